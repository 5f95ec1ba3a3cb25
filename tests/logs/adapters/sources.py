"""Records of the other sources, built the way their producers write them, for the tests."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import orjson

from distillguard.logs import read_file
from distillguard.logs.adapters import SourceOptions
from distillguard.logs.adapters.otlp import attributes_list
from distillguard.logs.quarantine import QuarantineRow

START_NS = 1_772_467_200_000_000_000  # 2026-03-02T16:00:00Z


def span(i: int = 0, attributes: dict[str, Any] | None = None, *,
         events: list[dict[str, Any]] | None = None, **fields: Any) -> dict[str, Any]:
    """A GenAI chat span in OTLP JSON (hex ids, times as strings)."""
    attrs = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "model-b1",
             "enduser.id": f"acct-{i % 3}", **(attributes or {})}
    out = {"traceId": f"{i:032x}", "spanId": f"{i + 1:016x}", "name": "chat model-b1",
           "kind": 3, "startTimeUnixNano": str(START_NS + i * 1_000_000_000),
           "endTimeUnixNano": str(START_NS + i * 1_000_000_000 + 5_000_000),
           "attributes": attributes_list({k: v for k, v in attrs.items() if v is not None}),
           "events": events or []}
    out.update(fields)
    return out


def content(question: str = "question", answer: str = "answer",
            system: str | None = None) -> dict[str, Any]:
    """The newer content attributes (JSON text, as the SDK sets them)."""
    attrs = {"gen_ai.input.messages": orjson.dumps(
        [{"role": "user", "parts": [{"type": "text", "content": question}]}]).decode(),
        "gen_ai.output.messages": orjson.dumps(
            [{"role": "assistant", "parts": [{"type": "text", "content": answer}],
              "finish_reason": "stop"}]).decode()}
    if system is not None:
        attrs["gen_ai.system_instructions"] = orjson.dumps(
            [{"type": "text", "content": system}]).decode()
    return attrs


def traces(*spans: Any, resource: dict[str, Any] | None = None) -> dict[str, Any]:
    """One ``ExportTraceServiceRequest`` in OTLP JSON."""
    return {"resourceSpans": [{
        "resource": {"attributes": attributes_list(resource or {"service.name": "app"})},
        "scopeSpans": [{"scope": {"name": "test"}, "spans": list(spans)}]}]}


def logs(*records: dict[str, Any]) -> dict[str, Any]:
    """One ``ExportLogsServiceRequest`` in OTLP JSON."""
    return {"resourceLogs": [{"resource": {"attributes": []},
                              "scopeLogs": [{"scope": {"name": "test"},
                                             "logRecords": list(records)}]}]}


def log_event(of_span: dict[str, Any], name: str, body: dict[str, Any], at: int = 0
              ) -> dict[str, Any]:
    """A GenAI content event exported as a log record of ``of_span``."""
    from distillguard.logs.adapters.otlp import to_any_value

    return {"timeUnixNano": str(int(of_span["startTimeUnixNano"]) + at), "eventName": name,
            "traceId": of_span["traceId"], "spanId": of_span["spanId"],
            "body": to_any_value(body), "attributes": []}


def write_lines(path: Path, items: list[Any]) -> Path:
    """Items as JSON lines (bytes written as they are); gzip when the name says so."""
    data = b"".join(i if isinstance(i, bytes) else orjson.dumps(i) + b"\n" for i in items)
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


def read_all(path: Path, options: SourceOptions = SourceOptions()
             ) -> tuple[list[dict[str, Any]], list[QuarantineRow], int]:
    """The records, quarantine rows and passed-over count of one file."""
    records: list[dict[str, Any]] = []
    quarantined: list[QuarantineRow] = []
    passed = 0
    for chunk in read_file(path, source=options):
        records += chunk.batch.to_pylist()
        quarantined += chunk.quarantined
        passed += chunk.not_exchanges
    return records, quarantined, passed
