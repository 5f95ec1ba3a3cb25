"""Read exchange logs in JSON Lines (plain, gzip or zstd), streaming."""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import orjson
import zstandard

from distillguard.errors import RecordError
from distillguard.logs.access import cannot_read_reason
from distillguard.logs.batch_builder import BatchBuilder
from distillguard.logs.bounds import latest_allowed_ms
from distillguard.logs.chunk import ReadChunk
from distillguard.logs.quarantine import QuarantineRow, quarantine_row, unreadable_row
from distillguard.logs.records import validate_record
from distillguard.logs.schema import empty_batch

__all__ = ["DEFAULT_BATCH_ROWS", "decompressed", "open_jsonl", "read_jsonl", "read_jsonl_stream"]

DEFAULT_BATCH_ROWS = 16_384
# A batch is also cut when its lines add up to this many bytes, so memory stays
# bounded when lines are large.
MAX_BATCH_BYTES = 64 * 1024 * 1024
_READ_BUFFER = 1 << 20
_CORRUPT_STREAM = (EOFError, OSError, zlib.error, zstandard.ZstdError)


def open_jsonl(path: Path) -> tuple[BinaryIO, BinaryIO]:
    """Open a JSON Lines file for binary line reading.

    Returns ``(lines, raw)``: ``lines`` yields decompressed lines, ``raw`` is the
    file on disk, whose ``tell()`` shows progress in on-disk bytes.
    """
    raw = open(path, "rb", buffering=_READ_BUFFER)  # noqa: SIM115 - returned to the caller
    return decompressed(raw, path.name), raw


def decompressed(raw: BinaryIO, name: str) -> BinaryIO:
    """``raw`` read through the decompressor its file ``name`` calls for (gzip, zstd or none)."""
    name = name.lower()
    if name.endswith(".gz"):
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if name.endswith(".zst"):
        return io.BufferedReader(_ZstdFrames(raw), buffer_size=_READ_BUFFER)
    return raw


class _ZstdFrames(io.RawIOBase):
    """The zstd frames of ``raw``, one after another, decompressed.

    zstandard's own stream reader ends quietly when the file stops inside a
    frame; this one raises ``EOFError`` then, as gzip does, so a truncated file
    is reported as such.
    """

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._dctx = zstandard.ZstdDecompressor()
        self._frame: zstandard.ZstdDecompressionObj | None = None
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._pending:
            data = self._raw.read(_READ_BUFFER)
            if not data:
                if self._frame is not None and not self._frame.eof:
                    msg = "compressed file ended before the end of its last zstd frame"
                    raise EOFError(msg)
                return 0
            self._pending = memoryview(self._decompress(data))
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def _decompress(self, data: bytes) -> bytes:
        out = []
        while data:
            if self._frame is None or self._frame.eof:
                self._frame = self._dctx.decompressobj()
            out.append(self._frame.decompress(data))
            data = self._frame.unused_data if self._frame.eof else b""
        return b"".join(out)


def read_jsonl(path: Path, *, batch_rows: int = DEFAULT_BATCH_ROWS,
               start_line: int = 0) -> Iterator[ReadChunk]:
    """Yield validated batches and quarantined rows from one JSON Lines file.

    Lines up to ``start_line`` (already ingested) are skipped. Blank lines carry
    no record and are skipped (and counted). A stream that breaks mid-file
    (truncated gzip or zstd) ends the file with one quarantine row at the line
    where it broke; a file that cannot be opened is one ``unreadable`` row. The
    run goes on with the next file.
    """
    try:
        lines, raw = open_jsonl(path)
    except OSError as exc:
        yield ReadChunk(str(path), empty_batch(), [unreadable_row(str(path),
                                                                 cannot_read_reason(exc))])
        return
    with raw, lines:
        yield from read_jsonl_stream(lines, raw, str(path), batch_rows=batch_rows,
                                     start_line=start_line)


def read_jsonl_stream(lines: BinaryIO, raw: BinaryIO, source: str, *,
                      batch_rows: int = DEFAULT_BATCH_ROWS,
                      start_line: int = 0) -> Iterator[ReadChunk]:
    """``read_jsonl`` over open streams: ``lines`` (decompressed) read from ``raw``,
    whose ``tell()`` gives progress; ``source`` names the file in quarantine rows."""
    builder = BatchBuilder(source)
    quarantined: list[QuarantineRow] = []
    latest_ms = latest_allowed_ms()
    batch_bytes = 0
    blank = 0
    line_no = 0
    iterator = iter(lines)
    while True:
        try:
            line = next(iterator)
        except StopIteration:
            break
        except _CORRUPT_STREAM as exc:
            reason = f"file is corrupt or truncated after line {line_no}: {exc}"
            quarantined.append(
                quarantine_row(source, line_no + 1, "corrupt_stream", reason, b""))
            break
        line_no += 1
        if line_no <= start_line:
            continue
        batch_bytes += len(line)
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            if not line.strip():
                blank += 1
                continue
            quarantined.append(_bad_json(source, line_no, line, exc))
        else:
            try:
                values, extra = validate_record(obj, latest_ms)
            except RecordError as exc:
                quarantined.append(
                    quarantine_row(source, line_no, exc.code, exc.reason, line))
            else:
                builder.add(values, extra, line_no)
        if len(builder) >= batch_rows or batch_bytes >= MAX_BATCH_BYTES:
            yield ReadChunk(source, builder.build(), quarantined, line_no, raw.tell(), blank)
            quarantined = []
            batch_bytes = blank = 0
    position = raw.tell()
    if len(builder) or quarantined or line_no > start_line:
        yield ReadChunk(source, builder.build(), quarantined, line_no, position, blank)


def _bad_json(source: str, line_no: int, line: bytes, exc: Exception) -> QuarantineRow:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as decode_exc:
        reason = f"line is not UTF-8 text (byte {decode_exc.start})"
        return quarantine_row(source, line_no, "not_utf8", reason, line)
    return quarantine_row(source, line_no, "invalid_json", f"not valid JSON: {exc}", line)
