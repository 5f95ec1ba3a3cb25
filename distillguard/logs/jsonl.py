"""Read exchange logs in JSON Lines (plain, gzip or zstd), streaming."""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, BinaryIO

import zstandard
from zlib_ng import zlib_ng

from distillguard.logs.access import cannot_read_reason
from distillguard.logs.bounds import latest_allowed_ms
from distillguard.logs.chunk import ReadChunk, unreadable_chunk
from distillguard.logs.json_blocks import (
    SMALLEST_PART,
    BlockParser,
    LinesResult,
    records_of_lines,
)
from distillguard.logs.quarantine import quarantine_row
from distillguard.logs.schema import empty_batch
from distillguard.prefetch import prefetch

__all__ = ["CORRUPT_STREAM_ERRORS", "DEFAULT_BATCH_ROWS", "DEFAULT_BLOCK_BYTES", "JsonlOptions",
           "LineBlock", "decompressed", "line_blocks", "numbered_lines", "open_jsonl",
           "read_jsonl", "read_jsonl_stream"]

DEFAULT_BATCH_ROWS = 16_384
# Decompressed text parsed at once: large enough for pyarrow's threads to share,
# small enough to keep memory flat (a line longer than this makes a longer block).
DEFAULT_BLOCK_BYTES = 8 << 20
_READ_BUFFER = 1 << 20
CORRUPT_STREAM_ERRORS = (EOFError, OSError, zlib.error, zlib_ng.error, zstandard.ZstdError)


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
        return _Frames(raw, _GzipMember)  # type: ignore[return-value]
    if name.endswith(".zst"):
        return _Frames(raw, zstandard.ZstdDecompressor().decompressobj)  # type: ignore[return-value]
    return raw


class _Frames(io.RawIOBase):
    """The compressed frames of ``raw`` (gzip members, zstd frames), decompressed one after
    another; ``read1`` hands over each decompressed piece as it comes.

    When the file ends inside a frame it raises ``EOFError`` after every byte that
    could be decompressed (gzip's own reader drops the last piece; zstandard's ends
    quietly), so a truncated file is reported after its last whole line.
    """

    def __init__(self, raw: BinaryIO, new_frame: Callable[[], Any]) -> None:
        self._raw = raw
        self._new_frame = new_frame
        self._frame: Any = None
        self._pending = b""

    def readable(self) -> bool:
        return True

    def read1(self, size: int = -1) -> bytes:
        while not self._pending:
            data = self._raw.read(_READ_BUFFER)
            if not data:
                if self._frame is not None and not self._frame.eof:
                    msg = "Compressed file ended before the end-of-stream marker was reached"
                    raise EOFError(msg)
                return b""
            self._pending = self._decompress(data)
        if 0 <= size < len(self._pending):
            piece, self._pending = self._pending[:size], self._pending[size:]
            return piece
        piece, self._pending = self._pending, b""
        return piece

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        piece = self.read1(len(buffer))
        buffer[: len(piece)] = piece
        return len(piece)

    def _decompress(self, data: bytes) -> bytes:
        out = []
        while data:
            if self._frame is None or self._frame.eof:
                self._frame = self._new_frame()
            out.append(self._frame.decompress(data))
            data = self._frame.unused_data if self._frame.eof else b""
        return b"".join(out)


class _GzipMember:
    """One gzip member, inflated by zlib-ng (twice zlib's speed, the same output); the
    zero bytes some writers pad between members are skipped, as gzip skips them."""

    def __init__(self) -> None:
        self._inflate = zlib_ng.decompressobj(wbits=31)
        self._started = False
        self.eof = False
        self.unused_data = b""

    def decompress(self, data: bytes) -> bytes:
        if not self._started:
            data = data.lstrip(b"\x00")
            if not data:
                self.eof = True  # padding only
                return b""
            if not data.startswith(b"\x1f\x8b"):
                msg = f"Not a gzipped file ({data[:2]!r})"
                raise gzip.BadGzipFile(msg)
            self._started = True
        out = self._inflate.decompress(data)
        self.eof = self._inflate.eof
        self.unused_data = self._inflate.unused_data
        return out


@dataclass(frozen=True, slots=True)
class JsonlOptions:
    """How JSON Lines are read. ``batch_rows``: most exchanges per chunk; ``block_bytes``:
    decompressed text parsed at once; ``vectorized``: false reads line by line only (the
    reference the fast path must equal); ``smallest_part``: parts of a block this small go
    line by line rather than being split again."""

    batch_rows: int = DEFAULT_BATCH_ROWS
    block_bytes: int = DEFAULT_BLOCK_BYTES
    vectorized: bool = True
    smallest_part: int = SMALLEST_PART


def read_jsonl(path: Path, *, start_line: int = 0, options: JsonlOptions = JsonlOptions(),
               **overrides: Any) -> Iterator[ReadChunk]:
    """Yield validated batches and quarantined rows from one JSON Lines file.

    Lines up to ``start_line`` (already ingested) are skipped. Blank lines carry
    no record and are skipped (and counted). A stream that breaks mid-file
    (truncated gzip or zstd) ends the file with one quarantine row at the line
    where it broke; a file that cannot be opened is one ``unreadable`` row. The
    run goes on with the next file. ``overrides`` replace fields of ``options``.
    """
    if overrides:
        options = replace(options, **overrides)
    try:
        lines, raw = open_jsonl(path)
    except OSError as exc:
        yield unreadable_chunk(str(path), cannot_read_reason(exc))
        return
    with raw, lines:
        yield from read_jsonl_stream(lines, raw, str(path), start_line=start_line,
                                     options=options)


def read_jsonl_stream(lines: BinaryIO, raw: BinaryIO, source: str, *, start_line: int = 0,
                      options: JsonlOptions = JsonlOptions()) -> Iterator[ReadChunk]:
    """``read_jsonl`` over open streams: ``lines`` (decompressed) read from ``raw``,
    whose ``tell()`` gives progress; ``source`` names the file in quarantine rows.

    Decompression runs in a thread of its own, a block ahead; each block of whole lines
    is parsed at once (``json_blocks``), or line by line when ``options.vectorized`` is
    false.
    """
    latest_ms = latest_allowed_ms()
    parser = BlockParser(source, latest_ms, smallest_part=options.smallest_part) \
        if options.vectorized else None
    line_no = 0
    for block in prefetch(line_blocks(lines, raw, options.block_bytes)):
        if block.error is not None:
            reason = f"file is corrupt or truncated after line {line_no}: {block.error}"
            bad = quarantine_row(source, line_no + 1, "corrupt_stream", reason, b"")
            yield ReadChunk(source, empty_batch(), [bad], line_no, block.position)
            return
        data, first = block.data, line_no + 1
        line_no += data.count(b"\n") + (not data.endswith(b"\n"))
        if line_no <= start_line:
            continue
        if first <= start_line:
            data = data[_offset_of_line(data, start_line - first + 1):]
            first = start_line + 1
        result = parser.parse(data, first) if parser else records_of_lines(
            numbered_lines(data, first), source, latest_ms)
        yield from _chunks(result, source, options.batch_rows, line_no, block.position)


@dataclass(slots=True)
class LineBlock:
    """Whole lines of decompressed text, how far into the file on disk reading had got,
    or the error that broke the stream (after the last whole line of the blocks before)."""

    data: bytes
    position: int
    error: Exception | None = None


def line_blocks(stream: BinaryIO, raw: BinaryIO, block_bytes: int) -> Iterator[LineBlock]:
    """Blocks of whole lines, each copied once. The stream is read a buffer at a time so
    that, when it breaks, every whole line decompressed before the break is delivered."""
    pieces: list[bytes] = []
    size = 0
    long_line = False
    while True:
        try:
            piece = stream.read1(_READ_BUFFER)
        except CORRUPT_STREAM_ERRORS as exc:
            block, _ = _whole_lines(pieces)
            if block:
                yield LineBlock(block, raw.tell())
            yield LineBlock(b"", raw.tell(), exc)
            return
        if not piece:
            if pieces:
                yield LineBlock(b"".join(pieces), raw.tell())
            return
        pieces.append(piece)
        size += len(piece)
        if size >= block_bytes and (not long_line or b"\n" in piece):
            block, pieces = _whole_lines(pieces)
            long_line = not block  # a line longer than a block: read on to its end
            if block:
                yield LineBlock(block, raw.tell())
            size = sum(map(len, pieces))


def _whole_lines(pieces: list[bytes]) -> tuple[bytes, list[bytes]]:
    """The whole lines of ``pieces`` joined, and what follows the last line break."""
    for i in range(len(pieces) - 1, -1, -1):
        cut = pieces[i].rfind(b"\n") + 1
        if cut:
            head = b"".join([*pieces[:i], pieces[i][:cut]])
            tail = [pieces[i][cut:], *pieces[i + 1:]]
            return head, [t for t in tail if t]
    return b"", pieces


def _offset_of_line(data: bytes, skip: int) -> int:
    """Where line ``skip + 1`` of ``data`` starts."""
    at = 0
    for _ in range(skip):
        at = data.index(b"\n", at) + 1
    return at


def numbered_lines(data: bytes, first: int) -> list[tuple[int, bytes]]:
    pieces = data.split(b"\n")
    lines = [piece + b"\n" for piece in pieces[:-1]]
    if pieces[-1]:
        lines.append(pieces[-1])
    return list(enumerate(lines, start=first))


def _chunks(result: LinesResult, source: str, batch_rows: int, last_line: int,
            position: int) -> Iterator[ReadChunk]:
    """``result`` in chunks of at most ``batch_rows`` exchanges, each ending on a line."""
    batch, quarantined = result.batch, result.quarantined
    while batch.num_rows > batch_rows:
        head, batch = batch.slice(0, batch_rows), batch.slice(batch_rows)
        upto = head.column("source_line")[-1].as_py()
        cut = next((i for i, q in enumerate(quarantined) if q.source_line > upto),
                   len(quarantined))
        yield ReadChunk(source, head, quarantined[:cut], upto, position)
        quarantined = quarantined[cut:]
    yield ReadChunk(source, batch, quarantined, last_line, position, result.blank_lines)
