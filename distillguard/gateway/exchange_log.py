"""The gateway's own exchange log: JSON Lines in the format every batch command reads.

Lines collect in memory and go to the file (one ``write`` of whole lines) at
least every ``flush_seconds``: a crash, even ``kill -9``, loses at most the
lines of the last unflushed interval. Flushed lines are in the operating
system's page cache, so they survive the process; ``fsync`` (surviving a power
cut) is not done per flush. A file is closed and a new one opened when it
passes ``rotate_bytes`` or ``rotate_seconds``; each replica writes its own files
(host, pid and a sequence number in the name), so replicas never share a file.

``Exchange`` is what became of one request; ``exchange_record`` makes its line
from the spec's own field list (``logs.schema``), so the log cannot drift from
the format the batch commands read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from distillguard.gateway.identity import Caller
from distillguard.gateway.output_safeguards import OutputGuard
from distillguard.gateway.parsed_request import ParsedRequest
from distillguard.gateway.periodic import Periodic
from distillguard.gateway.policy import Decision
from distillguard.logs.rotating import RotatingLines
from distillguard.logs.schema import SPEC_FIELDS

__all__ = ["EXTRA_FIELDS", "Exchange", "ExchangeLogWriter", "exchange_record"]

# The spec's fields in its order, and those it requires.
_SPEC = tuple(f.name for f in SPEC_FIELDS)
_REQUIRED = tuple(f.name for f in SPEC_FIELDS if not f.nullable)
# The gateway's own fields; readers keep them in ``extra`` (docs/gateway.md, "The log").
EXTRA_FIELDS = ("api", "stream", "added_ms", "upstream_ms", "error", "gateway_action",
                "gateway_rule", "gateway_shadow", "watchlist_verdict",
                "reasoning_withheld_chars", "opaque_parts", "safeguards")
_TOKEN_FIELDS = ("input_tokens", "output_tokens")


def exchange_record(fields: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """One log line: the spec's ``fields`` in the spec's order (names the spec does not
    have are not written), then the gateway's ``extra`` fields (``EXTRA_FIELDS``). None
    means absent; a required field absent is a ``ValueError`` (a gateway bug, never the
    client's doing)."""
    for name in _REQUIRED:
        if fields.get(name) is None:
            raise ValueError(f"exchange record without its required field {name!r}")
    record = {name: fields[name] for name in _SPEC if fields.get(name) is not None}
    record.update({name: value for name, value in extra.items() if value is not None})
    return record


class Exchange:
    """What becomes of one request: filled in as it goes, written to the log at the end."""

    __slots__ = ("api", "caller", "decision", "error", "fields", "guard", "request", "request_id",
                 "started", "status", "ts_ms", "upstream_seconds", "withheld")

    def __init__(self, request: ParsedRequest, caller: Caller, ts_ms: int, started: float
                 ) -> None:
        self.request = request
        self.caller = caller
        self.ts_ms = ts_ms
        self.started = started
        self.decision: Decision | None = None
        self.status = 0
        self.fields: dict[str, Any] = {}  # the answer's: response, reasoning, token counts
        self.error: str | None = None
        self.upstream_seconds = 0.0
        self.withheld = 0
        self.guard: OutputGuard | None = None  # the output safeguards, for listed accounts
        self.request_id: str | None = None  # set early when a safeguard needs it

    def record(self, request_id: str, total_seconds: float) -> dict[str, Any]:
        """The exchange's log line, ``total_seconds`` after it arrived."""
        request, caller, decision = self.request, self.caller, self.decision
        account = caller.account
        fields = {
            "request_id": request_id, "ts": self.ts_ms, "account_id": account.account_id,
            "model": request.model, "messages": request.messages, "system": request.system,
            "org_id": account.org_id, "api_key_id": caller.api_key_id,
            "account_tier": account.tier,
            "verified": account.verified if account.listed else None,
            "payment_fingerprint": account.payment_fingerprint, "ip": caller.ip,
            "user_agent": caller.user_agent, "tools": request.tools,
            "has_image": True if request.has_image else None, "status": self.status,
            **self.fields}
        for name in _TOKEN_FIELDS:  # an upstream's usage is not trusted to be an integer
            value = fields.get(name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                fields[name] = None
        acted = decision is not None and bool(decision.rule or decision.verdict)
        extra = {
            "api": request.api, "stream": request.stream,
            "added_ms": round((total_seconds - self.upstream_seconds) * 1000, 3),
            "upstream_ms": round(self.upstream_seconds * 1000, 3), "error": self.error,
            "gateway_action": decision.action if acted else None,
            "gateway_rule": decision.rule if acted else None,
            "gateway_shadow": decision.shadow if acted else None,
            "watchlist_verdict": decision.verdict if acted else None,
            "reasoning_withheld_chars": self.withheld or None,
            "opaque_parts": request.opaque_parts,
            "safeguards": self.guard.log_field() if self.guard is not None else None}
        return exchange_record(fields, extra)


class ExchangeLogWriter:
    """Append exchange records to rotating ``gateway-*.jsonl`` files under ``directory``."""

    def __init__(self, directory: str | Path, *, flush_seconds: float = 1.0,
                 rotate_bytes: int = 256 << 20, rotate_seconds: float = 3600.0) -> None:
        self.lines = RotatingLines(directory, prefix="gateway", flush_seconds=flush_seconds,
                                   rotate_bytes=rotate_bytes, rotate_seconds=rotate_seconds)
        self._timer = Periodic(flush_seconds / 2, self.lines.flush)

    @property
    def path(self) -> Path | None:
        """The file being written now (None before the first flush)."""
        return self.lines.path

    @property
    def records_written(self) -> int:
        return self.lines.lines_written

    def write(self, record: dict[str, Any]) -> None:
        """Queue one record; flush when the last flush is ``flush_seconds`` old."""
        self.lines.append(orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE))

    def flush(self) -> None:
        self.lines.flush()

    def start(self) -> None:
        """Flush on a timer too, so a quiet gateway still writes within the interval."""
        self._timer.start()

    async def close(self) -> None:
        await self._timer.stop()
        self.lines.close()
