"""The gateway's own exchange log: JSON Lines in the format every batch command reads.

Lines collect in memory and go to the file (one ``write`` of whole lines) at
least every ``flush_seconds``: a crash, even ``kill -9``, loses at most the
lines of the last unflushed interval. Flushed lines are in the operating
system's page cache, so they survive the process; ``fsync`` (surviving a power
cut) is not done per flush. A file is closed and a new one opened when it
passes ``rotate_bytes`` or ``rotate_seconds``; each replica writes its own files
(host, pid and a sequence number in the name), so replicas never share a file.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any

import orjson

from distillguard.gateway.periodic import Periodic

__all__ = ["ExchangeLogWriter"]


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
