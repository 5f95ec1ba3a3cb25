"""Read a file of JSON lines from another source through a converter into exchange batches.

A converter turns each parsed line into zero or more exchange-log records (an OTLP
line holds many spans; a batch output line pairs with a request of another file).
Every record then goes through the format's own per-record validation
(``records.validate_record``), so an adapted record is held to exactly the rules of
a native one, and every reject is quarantined with the file, the line and the reason.
A converter may hold records back (a span waiting for its content, exported
separately as log records) and release them at the end of the file; the chunks'
``last_line`` never passes a line whose records are still held, so an interrupted
ingest resumes before it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol

import orjson

from distillguard.errors import RecordError
from distillguard.logs.access import cannot_read_reason
from distillguard.logs.batch_builder import BatchBuilder
from distillguard.logs.bounds import latest_allowed_ms
from distillguard.logs.chunk import ReadChunk, unreadable_chunk
from distillguard.logs.json_blocks import bad_json_row
from distillguard.logs.jsonl import (
    DEFAULT_BATCH_ROWS,
    DEFAULT_BLOCK_BYTES,
    line_blocks,
    numbered_lines,
)
from distillguard.logs.quarantine import QuarantineRow, quarantine_row
from distillguard.logs.records import validate_record
from distillguard.prefetch import prefetch

__all__ = ["Converted", "Converter", "OneRecordPerLine", "RawText", "open_failed",
           "read_converted"]

# A record's text for the quarantine, or how to write it (for a converter whose
# records are rarely rejected, so that the good ones never pay for it).
RawText = bytes | Callable[[], bytes]


@dataclass(frozen=True, slots=True)
class Converted:
    """One record made from line ``line``: an exchange-log ``record``, or the ``error``
    that keeps it out, with the ``raw`` text to quarantine."""

    line: int
    record: dict[str, Any] | None
    error: RecordError | None = None
    raw: RawText = b""


class Converter(Protocol):
    """Turns a source's parsed lines into exchange-log records."""

    not_exchanges: int

    def feed(self, line: int, obj: Any, raw: bytes, emit: bool) -> Iterable[Converted]:
        """The records of line ``line`` (parsed ``obj``, text ``raw``); with ``emit``
        false (a line an earlier run stored) it only takes in what later lines need."""
        ...

    def finish(self) -> Iterable[Converted]:
        """The records still held at the end of the file."""
        ...

    def held_from(self) -> int | None:
        """The first line whose records are still held, or None."""
        ...


class OneRecordPerLine:
    """A converter whose every line is one exchange, or none (``record`` returns None for
    a line that is not an exchange: counted, passed over)."""

    def __init__(self) -> None:
        self.not_exchanges = 0

    def record(self, obj: Any) -> dict[str, Any] | None:
        """The exchange-log record of parsed line ``obj``; ``RecordError`` to quarantine it."""
        raise NotImplementedError

    def held_from(self) -> int | None:
        return None

    def finish(self) -> Iterator[Converted]:
        return iter(())

    def feed(self, line: int, obj: Any, raw: bytes, emit: bool) -> Iterator[Converted]:
        if not emit:
            return
        try:
            record = self.record(obj)
        except RecordError as exc:
            yield Converted(line, None, exc, raw)
            return
        if record is None:
            self.not_exchanges += 1
        else:
            yield Converted(line, record, None, raw)


class _Collector:
    """Validated records and rejects of one file, cut into chunks."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.latest_ms = latest_allowed_ms()
        self.builder = BatchBuilder(source)
        self.quarantined: list[QuarantineRow] = []
        self.blank = 0

    def add(self, item: Converted) -> None:
        if item.error is None:
            try:
                values, extra = validate_record(item.record, self.latest_ms)
            except RecordError as exc:
                item = Converted(item.line, None, exc, _text(item.raw) or _raw(item.record))
            else:
                self.builder.add(values, extra, item.line)
                return
        assert item.error is not None
        self.quarantined.append(quarantine_row(self.source, item.line, item.error.code,
                                               item.error.reason, _text(item.raw)))

    def chunk(self, converter: Converter, line_no: int, position: int) -> ReadChunk:
        held = converter.held_from()
        last = line_no if held is None else held - 1
        chunk = ReadChunk(self.source, self.builder.build(), self.quarantined, last, position,
                          self.blank, converter.not_exchanges)
        self.quarantined, self.blank = [], 0
        converter.not_exchanges = 0
        return chunk


def _text(raw: RawText) -> bytes:
    return raw() if callable(raw) else raw


def _raw(record: Any) -> bytes:
    return orjson.dumps(record, default=str)


def read_converted(lines: BinaryIO, raw: BinaryIO, source: str, converter: Converter, *,
                   start_line: int = 0, batch_rows: int = DEFAULT_BATCH_ROWS
                   ) -> Iterator[ReadChunk]:
    """Every record ``converter`` makes of the lines of ``lines`` (decompressed, read
    from ``raw``, whose ``tell()`` gives progress), in chunks of at most ``batch_rows``.

    Lines up to ``start_line`` were stored by an earlier run: they are fed (a later
    span's content may be there) but make no records. A stream that breaks ends the
    file with one ``corrupt_stream`` row, after the records held are released.
    """
    out = _Collector(source)
    line_no = 0
    for block in prefetch(line_blocks(lines, raw, DEFAULT_BLOCK_BYTES)):
        if block.error is not None:
            for item in converter.finish():
                out.add(item)
            reason = f"file is corrupt or truncated after line {line_no}: {block.error}"
            out.quarantined.append(quarantine_row(source, line_no + 1, "corrupt_stream",
                                                  reason, b""))
            yield out.chunk(converter, line_no, block.position)
            return
        for number, line in numbered_lines(block.data, line_no + 1):
            line_no = number
            emit = line_no > start_line
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                if emit:
                    if line.strip():
                        out.quarantined.append(bad_json_row(source, line_no, line, exc))
                    else:
                        out.blank += 1
                continue
            for item in converter.feed(line_no, obj, line, emit):
                out.add(item)
            if len(out.builder) >= batch_rows:
                yield out.chunk(converter, line_no, block.position)
        yield out.chunk(converter, line_no, block.position)
    for item in converter.finish():
        out.add(item)
    yield out.chunk(converter, line_no, raw.tell())


def open_failed(source: str, exc: OSError) -> ReadChunk:
    """The chunk of a file that could not be opened."""
    return unreadable_chunk(source, cannot_read_reason(exc))
