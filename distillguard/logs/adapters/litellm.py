"""LiteLLM proxy request logs (its standard logging payload) as exchange-log records.

One JSON object per line: ``StandardLoggingPayload``, as LiteLLM hands it to its
logging integrations (a custom callback, its bucket loggers write one per object).
Calls that are not chat or text completions (embeddings, images, audio, moderation)
are passed over and counted. See docs/adapters.md for the field table.
"""

from __future__ import annotations

from typing import Any

from distillguard.errors import RecordError
from distillguard.logs.adapters.genai_content import conversation_of_chat, tool_names
from distillguard.logs.adapters.lines import OneRecordPerLine
from distillguard.logs.adapters.mapping import (
    LITELLM_FIELDS,
    FieldMap,
    json_path,
    missing_account_error,
)

__all__ = ["EXCHANGE_CALL_TYPES", "LiteLLMConverter"]

# call_type values of requests that carry a conversation (sync and async names).
EXCHANGE_CALL_TYPES = frozenset({
    "completion", "acompletion", "text_completion", "atext_completion",
    "anthropic_messages", "responses", "aresponses", "generate_content",
    "agenerate_content"})
# Keys whose content is mapped; the rest of the payload's small keys go to ``extra``.
_MAPPED = frozenset({"id", "startTime", "messages", "response", "metadata", "model_parameters",
                     "prompt_tokens", "completion_tokens", "model", "model_group", "end_user",
                     "requester_ip_address", "hidden_params", "model_map_information"})
_KEPT = ("call_type", "status", "trace_id", "response_cost", "cache_hit", "api_base",
         "model_id", "error_str", "request_tags", "endTime")


def _ms(seconds: Any) -> Any:
    """``startTime`` (epoch seconds, a float) as epoch milliseconds; other values as they are,
    for validation to reject."""
    if isinstance(seconds, int | float) and not isinstance(seconds, bool):
        return round(seconds * 1000)
    return seconds


class LiteLLMConverter(OneRecordPerLine):
    """Turns LiteLLM standard logging payloads into exchange-log records."""

    def __init__(self, field_map: FieldMap | None = None) -> None:
        super().__init__()
        self.field_map = field_map or FieldMap(LITELLM_FIELDS)

    def record(self, obj: Any) -> dict[str, Any] | None:
        if not isinstance(obj, dict):
            raise RecordError("not_an_object", f"record must be a JSON object, got "
                              f"{type(obj).__name__}")
        if obj.get("call_type") not in EXCHANGE_CALL_TYPES:
            return None
        record = self.field_map.pick(lambda place: json_path(obj, place))
        if "account_id" not in record:
            raise missing_account_error(self.field_map, "the payload")
        response = obj.get("response")
        conversation = conversation_of_chat(obj.get("messages"), response)
        record.update(request_id=obj.get("id"), ts=_ms(obj.get("startTime")),
                      tools=tool_names(json_path(obj, "model_parameters.tools")),
                      **{k: v for k, v in conversation.fields().items() if v is not None})
        record["litellm"] = {k: obj[k] for k in _KEPT if obj.get(k) is not None}
        return record
