"""Whole lines appended to rotating files, flushed at least every few seconds: the
gateway's exchange log and ``collect``'s OTLP files.

Lines wait in memory and reach the file in one ``write`` of whole lines when the last
flush is ``flush_seconds`` old (on the next line, or on the timer ``run_flushes``
keeps), or when ``max_buffer_bytes`` are waiting: a ``kill -9`` loses at most one
interval's lines. A file is closed and the next opened when it passes
``rotate_bytes`` or ``rotate_seconds``; names carry the time, host, process id and a
sequence number, so several writers may share a folder.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from pathlib import Path

__all__ = ["RotatingLines"]


class RotatingLines:
    """Append lines to ``{prefix}-{time}-{host}-{pid}-{seq}.jsonl`` files under ``directory``."""

    def __init__(self, directory: str | Path, *, prefix: str, flush_seconds: float = 1.0,
                 rotate_bytes: int = 64 << 20, rotate_seconds: float = 3600.0,
                 max_buffer_bytes: int = 8 << 20) -> None:
        self.directory = Path(directory)
        self.prefix = prefix
        self.flush_seconds = flush_seconds
        self.rotate_bytes = rotate_bytes
        self.rotate_seconds = rotate_seconds
        self.max_buffer_bytes = max_buffer_bytes
        self.lines_written = 0
        self.files_opened: list[Path] = []
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._fd: int | None = None
        self._file_bytes = 0
        self._file_opened = 0.0
        self._last_flush = time.monotonic()

    def append(self, line: bytes) -> None:
        """Queue one line (ending in a line break); flush when the interval or the buffer
        says so."""
        self._pending.append(line)
        self._pending_bytes += len(line)
        if (self._pending_bytes >= self.max_buffer_bytes
                or time.monotonic() - self._last_flush >= self.flush_seconds):
            self.flush()

    def flush(self) -> None:
        self._last_flush = now = time.monotonic()
        if not self._pending:
            return
        if self._fd is None or self._file_bytes >= self.rotate_bytes or (
                now - self._file_opened >= self.rotate_seconds):
            self._rotate(now)
        assert self._fd is not None
        data = memoryview(b"".join(self._pending))
        count = len(self._pending)
        self._pending, self._pending_bytes = [], 0
        self._file_bytes += len(data)
        while data:
            data = data[os.write(self._fd, data):]
        self.lines_written += count

    @property
    def path(self) -> Path | None:
        """The file being written now (None before the first flush)."""
        return self.files_opened[-1] if self.files_opened else None

    def _rotate(self, now: float) -> None:
        self._close_file()
        self.directory.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        host = socket.gethostname().split(".")[0] or "host"
        name = f"{self.prefix}-{stamp}-{host}-{os.getpid()}-{len(self.files_opened) + 1:04d}.jsonl"
        path = self.directory / name
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self.files_opened.append(path)
        self._file_opened, self._file_bytes = now, 0

    def _close_file(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    async def run_flushes(self) -> None:
        """Flush every half interval until cancelled, so that a quiet writer still writes."""
        while True:
            await asyncio.sleep(self.flush_seconds / 2)
            self.flush()

    def close(self) -> None:
        self.flush()
        self._close_file()
