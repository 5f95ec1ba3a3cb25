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

import os
import socket
import time
from pathlib import Path
from typing import Any

import orjson

from distillguard.gateway.identity import Caller
from distillguard.gateway.parsed_request import ParsedRequest
from distillguard.gateway.periodic import Periodic
from distillguard.gateway.policy import Decision
from distillguard.logs.schema import SPEC_FIELDS

__all__ = ["EXTRA_FIELDS", "Exchange", "ExchangeLogWriter", "exchange_record"]

# The spec's fields in its order, and whether each is required.
_SPEC = tuple((f.name, not f.nullable) for f in SPEC_FIELDS)
# The gateway's own fields; readers keep them in ``extra`` (docs/gateway.md, "The log").
EXTRA_FIELDS = ("api", "stream", "added_ms", "upstream_ms", "error", "gateway_action",
                "gateway_rule", "gateway_shadow", "watchlist_verdict",
                "reasoning_withheld_chars", "opaque_parts")
_TOKEN_FIELDS = ("input_tokens", "output_tokens")


def exchange_record(fields: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """One log line: the spec's ``fields`` in the spec's order (names the spec does not
    have are not written), then the gateway's ``extra`` fields (``EXTRA_FIELDS``). None
    means absent; a required field absent is a ``ValueError`` (a gateway bug, never the
    client's doing)."""
    record: dict[str, Any] = {}
    for name, required in _SPEC:
        value = fields.get(name)
        if value is not None:
            record[name] = value
        elif required:
            raise ValueError(f"exchange record without its required field {name!r}")
    record.update((name, value) for name, value in extra.items() if value is not None)
    return record


class Exchange:
    """What becomes of one request: filled in as it goes, written to the log at the end."""

    __slots__ = ("api", "caller", "decision", "error", "fields", "request", "started", "status",
                 "ts_ms", "upstream_seconds", "withheld")

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
            "opaque_parts": request.opaque_parts}
        return exchange_record(fields, extra)


class ExchangeLogWriter:
    """Append exchange records to rotating ``gateway-*.jsonl`` files under ``directory``."""

    def __init__(self, directory: str | Path, *, flush_seconds: float = 1.0,
                 rotate_bytes: int = 256 << 20, rotate_seconds: float = 3600.0) -> None:
        self.directory = Path(directory)
        self.flush_seconds = flush_seconds
        self.rotate_bytes = rotate_bytes
        self.rotate_seconds = rotate_seconds
        self.records_written = 0
        self._buffer = bytearray()
        self._fd: int | None = None
        self._path: Path | None = None
        self._opened_at = 0.0
        self._size = 0
        self._seq = 0
        self._last_flush = time.monotonic()
        self._timer = Periodic(flush_seconds / 2, self.flush)

    @property
    def path(self) -> Path | None:
        """The file being written now (None before the first flush)."""
        return self._path

    def write(self, record: dict[str, Any]) -> None:
        """Queue one record; flush when the last flush is ``flush_seconds`` old."""
        self._buffer += orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)
        if time.monotonic() - self._last_flush >= self.flush_seconds:
            self.flush()

    def flush(self) -> None:
        self._last_flush = time.monotonic()
        if not self._buffer:
            return
        if self._fd is None or self._size >= self.rotate_bytes or (
                self._last_flush - self._opened_at >= self.rotate_seconds):
            self._open_next()
        assert self._fd is not None
        data, self._buffer = bytes(self._buffer), bytearray()
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view):]
        self._size += len(data)
        self.records_written += data.count(b"\n")

    def _open_next(self) -> None:
        self._close_file()
        self.directory.mkdir(parents=True, exist_ok=True)
        self._seq += 1
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        host = socket.gethostname().split(".")[0] or "host"
        self._path = self.directory / f"gateway-{stamp}-{host}-{os.getpid()}-{self._seq:04d}.jsonl"
        self._fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._opened_at = time.monotonic()
        self._size = 0

    def _close_file(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def start(self) -> None:
        """Flush on a timer too, so a quiet gateway still writes within the interval."""
        self._timer.start()

    async def close(self) -> None:
        await self._timer.stop()
        self.flush()
        self._close_file()
