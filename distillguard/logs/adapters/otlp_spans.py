"""Exchange-log records as OpenTelemetry GenAI spans (OTLP JSON): what the gateway's
``--otlp-endpoint`` sends, and what ``OtlpConverter`` reads back into the same records.

A record's conversation goes in the newer content attributes (``gen_ai.input.messages``,
``gen_ai.output.messages``, ``gen_ai.system_instructions``, as JSON text); the fields
with an OpenTelemetry name in theirs (``mapping.OTLP_FIELDS``); the others, which the
conventions have no name for (payment fingerprint, account tier...), as
``distillguard.FIELD``, and the gateway's own extra fields as ``distillguard.gateway.NAME``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

import orjson

from distillguard.logs.adapters.mapping import GATEWAY_NAMESPACE, OTLP_FIELDS
from distillguard.logs.adapters.otlp import (
    HAS_IMAGE_ATTRIBUTE,
    REQUEST_ID_ATTRIBUTE,
    TOOLS_ATTRIBUTE,
    attributes_list,
)

__all__ = ["SPAN_KIND_CLIENT", "exchange_span", "span_ids", "traces_request"]

SPAN_KIND_CLIENT = 3
_STATUS_ERROR = 2
_NANOS_PER_MS = 1_000_000
# Fields written in the content attributes or derived, not by the field table.
_CONTENT_FIELDS = frozenset({"request_id", "ts", "messages", "system", "response", "reasoning",
                             "tools", "has_image"})
GATEWAY_EXTRA_PREFIX = GATEWAY_NAMESPACE + "gateway."


def _text_parts(text: str) -> list[dict[str, str]]:
    return [{"type": "text", "content": text}]


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _content_attributes(record: dict[str, Any]) -> dict[str, Any]:
    attributes: dict[str, Any] = {"gen_ai.input.messages": _json(
        [{"role": m["role"], "parts": _text_parts(m["content"])} for m in record["messages"]])}
    if record.get("system") is not None:
        attributes["gen_ai.system_instructions"] = _json(_text_parts(record["system"]))
    parts = []
    if record.get("reasoning") is not None:
        parts.append({"type": "reasoning", "content": record["reasoning"]})
    if record.get("response") is not None:
        parts += _text_parts(record["response"])
    if parts:
        attributes["gen_ai.output.messages"] = _json([{"role": "assistant", "parts": parts}])
    return attributes


def span_ids(request_id: str) -> tuple[str, str]:
    """The trace and span id (hex) of the span of the exchange ``request_id``: a keyed hash
    of it, so a span built again (a batch sent again, a log exported twice) keeps its ids.

    >>> [len(i) for i in span_ids("gw-1")], span_ids("gw-1") == span_ids("gw-1")
    ([32, 16], True)
    """
    digest = hashlib.blake2b(request_id.encode("utf-8"), digest_size=24,
                             person=b"dg-otlp-span").hexdigest()
    return digest[:32], digest[32:]


def exchange_span(record: dict[str, Any], *, extra: Iterable[str] = ()) -> dict[str, Any]:
    """One exchange-log ``record`` (``ts`` in epoch milliseconds) as a GenAI chat span in
    OTLP JSON; the names in ``extra`` are the record's non-spec fields to carry along. Its
    ids come from the record's ``request_id`` (``span_ids``)."""
    start = int(record["ts"]) * _NANOS_PER_MS
    took_ms = (record.get("added_ms") or 0) + (record.get("upstream_ms") or 0)
    attributes: dict[str, Any] = {"gen_ai.operation.name": "chat",
                                  REQUEST_ID_ATTRIBUTE: record["request_id"]}
    for name, places in OTLP_FIELDS.items():
        if record.get(name) is not None:
            attributes[places[0]] = record[name]
    if record.get("api"):
        attributes["gen_ai.provider.name"] = record["api"]
    attributes.update(_content_attributes(record))
    if record.get("tools") is not None:
        attributes[TOOLS_ATTRIBUTE] = list(record["tools"])
    if record.get("has_image"):
        attributes[HAS_IMAGE_ATTRIBUTE] = True
    attributes.update((GATEWAY_EXTRA_PREFIX + name, record[name]) for name in extra
                      if record.get(name) is not None and name not in _CONTENT_FIELDS)
    failed = record.get("error") or (record.get("status") or 0) >= 400
    trace_id, span_id = span_ids(str(record["request_id"]))
    span: dict[str, Any] = {
        "traceId": trace_id, "spanId": span_id,
        "name": f"chat {record['model']}", "kind": SPAN_KIND_CLIENT,
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(start + round(took_ms * _NANOS_PER_MS)),
        "attributes": attributes_list(attributes)}
    if failed:
        span["status"] = {"code": _STATUS_ERROR, "message": str(record.get("error") or "")}
    return span


def traces_request(spans: list[dict[str, Any]], resource: dict[str, Any],
                   scope: str = "distillguard") -> dict[str, Any]:
    """An ``ExportTraceServiceRequest`` in OTLP JSON of ``spans`` from one ``resource``."""
    return {"resourceSpans": [{"resource": {"attributes": attributes_list(resource)},
                               "scopeSpans": [{"scope": {"name": scope}, "spans": spans}]}]}
