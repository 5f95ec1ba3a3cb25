"""OpenAI-format request/response JSON Lines, paired as the Batch API pairs them.

Three kinds of line, all with a ``custom_id``:

- a request, as in a batch input file: ``{custom_id, method, url, body}``;
- a response, as in a batch output or error file: ``{id, custom_id, response:
  {status_code, request_id, body}, error}``;
- both in one line: ``{custom_id, body, response}`` (a request log that kept the answer).

A request is one exchange. Its response comes from the same line, else from the output
files beside it: the openai-batch files of the same folder, paired by ``custom_id``.
The response gives the time (``created``), the answer and the token counts; a request
without one has no time and is quarantined with the reason. A response whose request is
in no file of its folder is quarantined (``unpaired_response``); a ``custom_id`` used by
several requests or responses of a folder cannot be paired (each batch's files belong
in a folder of their own). Embeddings requests are passed over and counted.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from distillguard.errors import RecordError
from distillguard.logs.adapters.formats import OPENAI_BATCH, sniff_format
from distillguard.logs.adapters.genai_content import conversation_of_chat, tool_names
from distillguard.logs.adapters.lines import OneRecordPerLine
from distillguard.logs.adapters.mapping import (
    OPENAI_BATCH_FIELDS,
    FieldMap,
    json_path,
    missing_account_error,
)
from distillguard.logs.jsonl import CORRUPT_STREAM_ERRORS, open_jsonl

__all__ = ["BatchPartners", "OpenAIBatchConverter", "batch_partners", "take_lines"]

_NOT_EXCHANGES = ("/v1/embeddings", "/v1/moderations")


def _is_response(obj: dict[str, Any]) -> bool:
    return "body" not in obj and ("response" in obj or "error" in obj)


@dataclass(slots=True)
class BatchPartners:
    """The requests and responses of the openai-batch files of one folder, by ``custom_id``:
    how many requests use each id, and the response lines (None where an id has several)."""

    requests: Counter[str] = field(default_factory=Counter)
    responses: dict[str, dict[str, Any] | None] = field(default_factory=dict)

    def take(self, obj: Any) -> None:
        if not isinstance(obj, dict) or not isinstance(obj.get("custom_id"), str):
            return
        custom_id = obj["custom_id"]
        if _is_response(obj):
            self.responses[custom_id] = None if custom_id in self.responses else obj
        elif "body" in obj:
            self.requests[custom_id] += 1


def _signature(folder: Path) -> tuple[tuple[str, int, int], ...]:
    entries = []
    for entry in sorted(folder.iterdir()):
        try:
            if entry.is_file() and not entry.name.startswith("."):
                st = entry.stat()
                entries.append((entry.name, st.st_size, st.st_mtime_ns))
        except OSError:
            continue
    return tuple(entries)


def take_lines(partners: BatchPartners, lines: Iterable[bytes]) -> BatchPartners:
    """``partners`` with the requests and responses of ``lines`` (JSON text) added; a
    stream that breaks ends what is taken (its reading quarantines the break)."""
    try:
        for line in lines:
            try:
                partners.take(orjson.loads(line))
            except orjson.JSONDecodeError:
                continue
    except CORRUPT_STREAM_ERRORS:
        pass
    return partners


@functools.lru_cache(maxsize=4)
def _partners(folder: Path, signature: tuple[tuple[str, int, int], ...]) -> BatchPartners:
    partners = BatchPartners()
    for name, _, _ in signature:
        path = folder / name
        if sniff_format(path)[0] != OPENAI_BATCH:
            continue
        try:
            lines, raw = open_jsonl(path)
        except OSError:
            continue  # the file's own reading says why
        with raw, lines:
            take_lines(partners, lines)  # type: ignore[arg-type]
    return partners


def batch_partners(path: Path) -> BatchPartners:
    """The requests and responses of the openai-batch files in ``path``'s folder (cached
    while the folder is unchanged)."""
    folder = path.resolve().parent
    return _partners(folder, _signature(folder))


def _ms(created: Any) -> int | None:
    if isinstance(created, int | float) and not isinstance(created, bool):
        return round(created * 1000)
    return None


def _request_conversation(url: Any, body: dict[str, Any], answer: Any) -> Any:
    if url == "/v1/completions" or ("prompt" in body and "messages" not in body):
        return conversation_of_chat(body.get("prompt"), answer)
    if url == "/v1/responses" or "input" in body:
        messages = body.get("input")
        if isinstance(body.get("instructions"), str):
            messages = [{"role": "system", "content": body["instructions"]},
                        *(messages if isinstance(messages, list) else
                          [{"role": "user", "content": messages}])]
        output = answer.get("output") if isinstance(answer, dict) else None
        message = next((o for o in output or [] if isinstance(o, dict)
                        and o.get("type") == "message"), None)
        return conversation_of_chat(messages, message or answer)
    return conversation_of_chat(body.get("messages"), answer)


class OpenAIBatchConverter(OneRecordPerLine):
    """Turns OpenAI batch lines into exchange-log records (see the module docstring)."""

    def __init__(self, field_map: FieldMap | None = None,
                 partners: BatchPartners | None = None) -> None:
        super().__init__()
        self.field_map = field_map or FieldMap(OPENAI_BATCH_FIELDS)
        self.partners = partners or BatchPartners()

    def record(self, obj: Any) -> dict[str, Any] | None:
        if not isinstance(obj, dict) or not isinstance(obj.get("custom_id"), str):
            raise RecordError("missing_field", "an openai-batch line must be an object with a "
                              "string custom_id")
        custom_id = obj["custom_id"]
        if _is_response(obj):
            if self.partners.requests[custom_id] == 1:
                return None  # read with its request
            why = ("several requests of this folder use it" if self.partners.requests[custom_id]
                   else "no request of this folder has it")
            raise RecordError("unpaired_response", f"response to custom_id {custom_id!r} "
                              f"cannot be paired with its request: {why}")
        body = obj.get("body")
        if not isinstance(body, dict):
            raise RecordError("wrong_type", "a batch request's 'body' must be an object")
        if obj.get("url") in _NOT_EXCHANGES:
            return None
        paired = obj if "response" in obj or "error" in obj else self._response(custom_id)
        answer = json_path(paired, "response.body") if paired else None
        merged = {**obj, **paired} if paired else obj
        record = self.field_map.pick(lambda place: json_path(merged, place))
        if "account_id" not in record:
            raise missing_account_error(self.field_map, "the request line")
        conversation = _request_conversation(obj.get("url"), body, answer)
        created = _ms(json_path(answer, "created") or json_path(answer, "created_at"))
        if created is None and obj.get("ts") is None:
            raise RecordError("missing_field", f"required field 'ts' is missing: request "
                              f"{custom_id!r} has no response to date it (put the batch's "
                              "output file beside its input file)")
        record.update(
            request_id=json_path(paired, "response.request_id") or (paired or {}).get("id")
            or f"batch:{custom_id}",
            ts=obj.get("ts", created),
            tools=tool_names(body.get("tools")),
            **{k: v for k, v in conversation.fields().items() if v is not None})
        record["openai_batch"] = {"custom_id": custom_id, "url": obj.get("url"),
                                  "error": (paired or {}).get("error")}
        return record

    def _response(self, custom_id: str) -> dict[str, Any] | None:
        if self.partners.requests[custom_id] > 1:
            return None
        return self.partners.responses.get(custom_id)
