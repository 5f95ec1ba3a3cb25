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
from distillguard.logs.batch_builder import BatchBuilder
from distillguard.logs.chunk import ReadChunk
from distillguard.logs.quarantine import QuarantineRow, quarantine_row
from distillguard.logs.records import validate_record

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
        stream = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
        return io.BufferedReader(stream, buffer_size=_READ_BUFFER)  # type: ignore[arg-type]
    return raw


def read_jsonl(path: Path, *, batch_rows: int = DEFAULT_BATCH_ROWS,
               start_line: int = 0) -> Iterator[ReadChunk]:
    """Yield validated batches and quarantined rows from one JSON Lines file.

    Lines up to ``start_line`` (already ingested) are skipped. Blank lines carry
    no record and are skipped. A stream that breaks mid-file (truncated gzip,
    corrupt zstd) ends the file with one quarantine row at the line where it
    broke; the run goes on with the next file.
    """
    lines, raw = open_jsonl(path)
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
    batch_bytes = 0
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
                continue
            quarantined.append(_bad_json(source, line_no, line, exc))
        else:
            try:
                values, extra = validate_record(obj)
            except RecordError as exc:
                quarantined.append(
                    quarantine_row(source, line_no, exc.code, exc.reason, line))
            else:
                builder.add(values, extra, line_no)
        if len(builder) >= batch_rows or batch_bytes >= MAX_BATCH_BYTES:
            yield ReadChunk(source, builder.build(), quarantined, line_no, raw.tell())
            quarantined = []
            batch_bytes = 0
    position = raw.tell()
    if len(builder) or quarantined or line_no > start_line:
        yield ReadChunk(source, builder.build(), quarantined, line_no, position)


def _bad_json(source: str, line_no: int, line: bytes, exc: Exception) -> QuarantineRow:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as decode_exc:
        reason = f"line is not UTF-8 text (byte {decode_exc.start})"
        return quarantine_row(source, line_no, "not_utf8", reason, line)
    return quarantine_row(source, line_no, "invalid_json", f"not valid JSON: {exc}", line)
