"""JSON Lines a block at a time: pyarrow's JSON reader, then checks over whole columns.

The per-record path (``records_of_lines``: orjson and ``validate_record``, line by
line) is what defines a valid record. This path makes the common case fast and
stores exactly what the per-record path stores: it accepts a line only where it
can tell the per-record path would accept it with the same values, and hands
every other line to the per-record path, which then gives the reason:

- the block must be UTF-8 and hold one JSON object per line (first byte ``{``,
  last ``}``, as many rows as lines); lines that are not are set aside;
- a part that pyarrow cannot parse (invalid JSON, a field of another JSON type)
  is split in halves until the halves parse, down to a few lines; timestamps
  given sometimes as strings and sometimes as numbers are parsed in two groups;
- values pyarrow accepts but the format rejects (nulls in required fields, an
  unknown role, an empty conversation, timestamps or integers out of range) are
  found column by column;
- timestamps are converted column-wise only in the RFC 3339 forms in which
  Arrow's parser and Python's agree to the millisecond;
- unknown fields are kept the way the per-record path keeps them (orjson), for
  the blocks that have any.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

from distillguard.errors import RecordError
from distillguard.logs.batch_builder import BatchBuilder
from distillguard.logs.bounds import INT_RANGES
from distillguard.logs.quarantine import QuarantineRow, quarantine_row
from distillguard.logs.records import (
    FIELD_KINDS,
    KNOWN_FIELDS,
    parse_timestamp_ms,
    unknown_fields,
    validate_record,
)
from distillguard.logs.schema import (
    EXCHANGE_SCHEMA,
    MESSAGE_ROLES,
    MESSAGE_TYPE,
    REQUIRED_FIELDS,
    TS_MAX_MS,
    TS_MIN_MS,
    TS_TYPE,
)

__all__ = ["SMALLEST_PART", "BlockParser", "LinesResult", "bad_json_row", "records_of_lines"]

# Parts of a block this small go to the per-record path instead of being split again.
SMALLEST_PART = 8
_JSON_TYPES = {
    "str": pa.string(),
    "bool": pa.bool_(),
    "int": pa.int64(),
    "messages": pa.list_(MESSAGE_TYPE),
    "str_list": pa.list_(pa.string()),
}
# Fields the format lets be a string or an integer (timestamps): pyarrow wants one.
_EITHER = tuple(name for name, kind in FIELD_KINDS.items() if kind == "ts")
_NUMBER_AT = {name: re.compile(rb'"' + name.encode() + rb'"\s*:\s*-?\d') for name in _EITHER}
_TEXT_AT = {name: re.compile(rb'"' + name.encode() + rb'"\s*:\s*"') for name in _EITHER}
_STOPPED_AT = re.compile(r" in row (\d+)$")
_CONFLICT = re.compile(r"Column\(/(\w+)\) changed from (?:string|number) to (?:string|number)")
# The RFC 3339 forms converted column-wise; anything else goes line by line.
_RFC3339 = (r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])[T ]([01]\d|2[0-3]):[0-5]\d:[0-5]\d"
            r"(\.\d{1,6})?(Z|[+-]([01]\d|2[0-3]):?[0-5]\d)?$")
_ZONE_AT_END = r"(Z|[+-]\d\d:?\d\d)$"
_US_UTC = pa.timestamp("us", tz="UTC")
_US_NAIVE = pa.timestamp("us")
_INT64_MIN = -(2**63)
_REQUIRED = tuple(f.name for f in REQUIRED_FIELDS)
_ROLES = pa.array(sorted(MESSAGE_ROLES))
_BLANK = np.zeros(256, dtype=bool)
_BLANK[list(b" \t\n\r\x0b\x0c")] = True  # what bytes.strip() removes
_OPEN, _CLOSE, _NL, _CR = ord("{"), ord("}"), ord("\n"), ord("\r")


@dataclass(slots=True)
class LinesResult:
    """Valid records (``EXCHANGE_SCHEMA``, in line order), rejects and blank lines of some lines."""

    batch: pa.RecordBatch
    quarantined: list[QuarantineRow] = field(default_factory=list)
    blank_lines: int = 0


def records_of_lines(lines: list[tuple[int, bytes]], source: str,
                     latest_ms: int) -> LinesResult:
    """The per-record path: each ``(number, raw line)`` parsed and checked on its own."""
    builder = BatchBuilder(source)
    quarantined: list[QuarantineRow] = []
    blank = 0
    for line_no, line in lines:
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            if not line.strip():
                blank += 1
                continue
            quarantined.append(bad_json_row(source, line_no, line, exc))
            continue
        try:
            values, extra = validate_record(obj, latest_ms)
        except RecordError as exc:
            quarantined.append(quarantine_row(source, line_no, exc.code, exc.reason, line))
        else:
            builder.add(values, extra, line_no)
    return LinesResult(builder.build(), quarantined, blank)


def bad_json_row(source: str, line_no: int, line: bytes, exc: Exception) -> QuarantineRow:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as decode_exc:
        reason = f"line is not UTF-8 text (byte {decode_exc.start})"
        return quarantine_row(source, line_no, "not_utf8", reason, line)
    return quarantine_row(source, line_no, "invalid_json", f"not valid JSON: {exc}", line)


@dataclass(slots=True)
class _Part:
    """Non-blank lines to parse together: ``data[starts[i]:stops[i]]`` is line ``numbers[i]``
    with its line break; whatever lies between lines in ``data`` is white space."""

    data: bytes
    numbers: np.ndarray
    starts: np.ndarray
    stops: np.ndarray

    def __len__(self) -> int:
        return len(self.numbers)

    def line(self, i: int) -> bytes:
        return self.data[self.starts[i]:self.stops[i]]

    def lines(self, rows: np.ndarray | range) -> list[tuple[int, bytes]]:
        return [(int(self.numbers[i]), self.line(i)) for i in rows]

    def slice(self, lo: int, hi: int) -> _Part:
        base, end = int(self.starts[lo]), int(self.stops[hi - 1])
        return _Part(self.data[base:end], self.numbers[lo:hi], self.starts[lo:hi] - base,
                     self.stops[lo:hi] - base)

    def subset(self, rows: np.ndarray) -> _Part:
        """The lines ``rows``, gathered into new data of their own."""
        pieces = [self.line(i) for i in rows]
        lengths = np.fromiter((len(p) for p in pieces), dtype=np.int64, count=len(pieces))
        stops = np.cumsum(lengths)
        return _Part(b"".join(pieces), self.numbers[rows], stops - lengths, stops)


class BlockParser:
    """Parses the blocks of one file in turn (``parse``), remembering across blocks which
    timestamp fields the file writes as numbers, or that it mixes numbers and strings."""

    def __init__(self, source: str, latest_ms: int, *,
                 smallest_part: int = SMALLEST_PART) -> None:
        self.source = source
        self.latest_ms = latest_ms
        self.smallest_part = smallest_part
        self._numeric: frozenset[str] = frozenset()
        self._mixed = False  # the last block mixed numbers and strings as timestamps

    def parse(self, data: bytes, first_line: int) -> LinesResult:
        """Valid records, rejects and blank lines of ``data``: whole lines, the first
        numbered ``first_line``. Stores what ``records_of_lines`` would, only faster."""
        codes = np.frombuffer(data, dtype=np.uint8)
        stops = np.flatnonzero(codes == _NL).astype(np.int64) + 1
        if len(data) and data[-1] != _NL:
            stops = np.append(stops, len(data))
        starts = np.concatenate(([0], stops[:-1])).astype(np.int64)
        blank = _BLANK[codes[starts]] if len(data) else np.zeros(0, dtype=bool)
        for i in np.flatnonzero(blank):  # starts with white space: blank unless more follows
            blank[i] = not data[starts[i]:stops[i]].strip()
        keep = np.flatnonzero(~blank)
        part = _Part(data, first_line + keep, starts[keep], stops[keep])
        merged = _merge(self._parse_part(part, None), self.source)
        merged.blank_lines = int(blank.sum())
        return merged

    def _per_record(self, part: _Part, rows: np.ndarray | range) -> LinesResult:
        return records_of_lines(part.lines(rows), self.source, self.latest_ms)

    def _parse_part(self, part: _Part, numeric: frozenset[str] | None) -> list[LinesResult]:
        """``numeric``: the fields known to be numbers in ``part`` (None: not known yet)."""
        if len(part) <= self.smallest_part:
            return [self._per_record(part, range(len(part)))]
        odd = _misshapen_lines(part)
        if odd.any():
            return [self._per_record(part, np.flatnonzero(odd)),
                    *self._parse_part(part.subset(np.flatnonzero(~odd)), numeric)]
        if numeric is None and self._mixed:
            return self._parse_by_timestamp_kind(part)
        kinds = self._numeric if numeric is None else numeric
        try:
            table = _read_json(part, kinds)
        except pa.ArrowInvalid as exc:
            conflict = _CONFLICT.search(str(exc))
            if numeric is None and conflict and conflict.group(1) in _EITHER:
                return self._parse_by_timestamp_kind(part)
            return self._around_bad_lines(part, kinds)
        return self._accept(table, part, kinds)

    def _accept(self, table: pa.Table, part: _Part, numeric: frozenset[str]) -> list[LinesResult]:
        """The rows pyarrow parsed, less those the checks leave to the per-record path."""
        if table.num_rows != len(part):  # a line held two objects
            return self._halves(part, numeric)
        batch, suspect = _checked_batch(table, part, self.source, self.latest_ms)
        results = [LinesResult(batch.filter(pa.array(~suspect)))]
        if suspect.any():
            results.append(self._per_record(part, np.flatnonzero(suspect)))
        return results

    def _around_bad_lines(self, part: _Part, numeric: frozenset[str]) -> list[LinesResult]:
        """A part pyarrow rejects: find its bad lines one after the other with a parse on
        one thread (which says in which row it stopped), parsing the runs of good lines
        between them. Each line is parsed about twice, however many are bad."""
        results: list[LinesResult] = []
        at = 0
        while len(part) - at > self.smallest_part:
            rest = part.slice(at, len(part))
            try:
                table = _read_json(rest, numeric, threads=False)
            except pa.ArrowInvalid as exc:
                stopped = _STOPPED_AT.search(str(exc))
                if stopped is None or int(stopped.group(1)) >= len(rest):
                    return results + self._halves(rest, numeric)  # no row named: bisect
                bad = int(stopped.group(1))
                if bad:
                    results += self._parse_part(rest.slice(0, bad), numeric)
                results.append(self._per_record(rest, range(bad, bad + 1)))
                at += bad + 1
            else:
                return results + self._accept(table, rest, numeric)
        if at < len(part):
            results.append(self._per_record(part, range(at, len(part))))
        return results

    def _halves(self, part: _Part, numeric: frozenset[str] | None) -> list[LinesResult]:
        mid = len(part) // 2
        return (self._parse_part(part.slice(0, mid), numeric)
                + self._parse_part(part.slice(mid, len(part)), numeric))

    def _parse_by_timestamp_kind(self, part: _Part) -> list[LinesResult]:
        """Parse the lines whose timestamps are numbers apart from those where they are
        strings; a file that writes them one way throughout is then parsed that way."""
        kinds: dict[frozenset[str], list[int]] = {}
        for i in range(len(part)):
            line = part.line(i)
            # Only a guess (a nested key may share the name): pyarrow checks each group.
            kind = frozenset(name for name in _EITHER if _NUMBER_AT[name].search(line)
                             and not _TEXT_AT[name].search(line))
            kinds.setdefault(kind, []).append(i)
        self._mixed = len(kinds) > 1
        if not self._mixed:
            self._numeric = next(iter(kinds))
        results: list[LinesResult] = []
        for kind, rows in kinds.items():
            results += self._parse_part(part.subset(np.array(rows, dtype=np.int64)), kind)
        return results


def _misshapen_lines(part: _Part) -> np.ndarray:
    """Lines that are not one UTF-8 JSON object each (they go line by line)."""
    codes = np.frombuffer(part.data, dtype=np.uint8)
    last = part.stops - 1
    last = last - (codes[last] == _NL)
    last = last - ((codes[np.maximum(last, part.starts)] == _CR) & (last > part.starts))
    odd = (codes[part.starts] != _OPEN) | (codes[np.maximum(last, part.starts)] != _CLOSE)
    for i in np.flatnonzero(odd):  # white space around the object is fine
        text = part.line(i).strip(b" \t\r\n")
        odd[i] = not (text.startswith(b"{") and text.endswith(b"}"))
    if not _is_utf8(part.data):
        for i in range(len(part)):
            try:
                part.line(i).decode("utf-8")
            except UnicodeDecodeError:
                odd[i] = True
    return odd


def _is_utf8(data: bytes) -> bool:
    buffer = pa.py_buffer(data)
    offsets = pa.array([0, len(data)], pa.int64()).buffers()[1]
    try:
        pa.Array.from_buffers(pa.large_binary(), 1, [None, offsets, buffer]).cast(
            pa.large_string())
    except pa.ArrowInvalid:
        return False
    return True


@lru_cache(maxsize=8)
def _json_schema(numeric: frozenset[str]) -> pa.Schema:
    return pa.schema([
        pa.field(name, pa.int64() if name in numeric else pa.string()) if kind == "ts"
        else pa.field(name, _JSON_TYPES[kind]) for name, kind in FIELD_KINDS.items()])


def _read_json(part: _Part, numeric: frozenset[str], *, threads: bool = True) -> pa.Table:
    """Parse ``part``: on pyarrow's threads, or on one thread in one piece, so that an
    error names the row in the whole part."""
    longest = int((part.stops - part.starts).max())
    block = max(1 << 20, longest + 1) if threads else len(part.data) + 1
    options = pa_json.ReadOptions(use_threads=threads, block_size=block)
    parse = pa_json.ParseOptions(explicit_schema=_json_schema(numeric),
                                 newlines_in_values=False, unexpected_field_behavior="infer")
    return pa_json.read_json(pa.BufferReader(part.data), read_options=options,
                             parse_options=parse)


def _checked_batch(table: pa.Table, part: _Part, source: str,
                   latest_ms: int) -> tuple[pa.RecordBatch, np.ndarray]:
    """The parsed rows as an ``EXCHANGE_SCHEMA`` batch, and which rows must go line by line."""
    columns = {name: table.column(name).combine_chunks() for name in table.schema.names}
    n = table.num_rows
    suspect = np.zeros(n, dtype=bool)
    for name in _REQUIRED:
        suspect |= _mask(columns[name].is_null())
    out: list[pa.Array] = []
    for name, kind in FIELD_KINDS.items():
        arr = columns[name]
        if kind == "ts":
            arr = _timestamps(arr, suspect, latest_ms)
        elif kind == "int":
            suspect |= _mask(pc.equal(arr, _INT64_MIN))
            if name in INT_RANGES:
                low, high = INT_RANGES[name]
                if low is not None:
                    suspect |= _mask(pc.less(arr, low))
                if high is not None:
                    suspect |= _mask(pc.greater(arr, high))
        elif kind == "messages":
            arr = _messages(arr, suspect)
        elif kind == "str_list":
            suspect |= _rows_with(arr, _mask(pc.is_null(pc.list_flatten(arr))))
        out.append(arr)
    out.append(_extras(table, part, suspect))
    out.append(pa.repeat(pa.scalar(source), n) if n else pa.array([], pa.string()))
    out.append(pa.array(part.numbers, pa.int64()))
    return pa.RecordBatch.from_arrays(out, schema=EXCHANGE_SCHEMA), suspect


def _mask(arr: pa.Array) -> np.ndarray:
    return np.asarray(arr.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


def _rows_with(lists: pa.Array, item_mask: np.ndarray) -> np.ndarray:
    """Rows of ``lists`` holding at least one item where ``item_mask`` is true."""
    rows = np.zeros(len(lists), dtype=bool)
    parents = pc.list_parent_indices(lists).to_numpy(zero_copy_only=False)
    rows[parents[item_mask]] = True
    return rows


def _timestamps(arr: pa.Array, suspect: np.ndarray, latest_ms: int) -> pa.Array:
    """Epoch milliseconds of a string or integer column; rows it cannot vouch for are marked."""
    if pa.types.is_integer(arr.type):
        ms = arr
    else:
        plain = pc.match_substring_regex(arr, _RFC3339)
        suspect |= _mask(pc.and_(pc.is_valid(arr), pc.invert(plain)))
        ms = _rfc3339_ms(pc.if_else(plain, arr, pa.scalar(None, pa.string())))
        suspect |= _mask(pc.and_(plain, pc.is_null(ms)))
    suspect |= _mask(pc.or_(pc.less(ms, TS_MIN_MS),
                            pc.greater_equal(ms, min(TS_MAX_MS, latest_ms))))
    return ms.cast(TS_TYPE)


def _rfc3339_ms(arr: pa.Array) -> pa.Array:
    """Milliseconds of ``_RFC3339`` strings exactly as ``parse_timestamp_ms`` computes them:
    microseconds from Arrow's parser (UTC when no offset is given), then Python's float
    arithmetic, ``round(seconds * 1000)``. Null where the date does not exist."""
    zoned = pc.match_substring_regex(arr, _ZONE_AT_END)
    try:
        with_zone = pc.if_else(zoned, arr, pa.scalar(None, pa.string())).cast(_US_UTC)
        without = pc.if_else(zoned, pa.scalar(None, pa.string()), arr).cast(_US_NAIVE)
    except pa.ArrowInvalid:  # a day that does not exist (30 February): value by value
        return pa.array([_ms_or_none(v) for v in arr.to_pylist()], pa.int64())
    us = pc.coalesce(with_zone.cast(pa.int64()), without.cast(pa.int64()))
    seconds = us.to_numpy(zero_copy_only=False).astype(np.float64) / 1e6
    ms = np.round(seconds * 1000.0)
    return pa.array(np.nan_to_num(ms).astype(np.int64), mask=_mask(pc.is_null(us)))


def _ms_or_none(value: str | None) -> int | None:
    try:
        return None if value is None else parse_timestamp_ms(value)
    except ValueError:
        return None


def _messages(arr: pa.Array, suspect: np.ndarray) -> pa.Array:
    """Messages as ``{role, content}`` lists; rows with a bad or odd message are marked."""
    items = pc.list_flatten(arr)
    bad_item = pc.or_kleene(pc.invert(pc.is_in(items.field("role"), value_set=_ROLES)),
                            pc.is_null(items.field("content")))
    bad_item = pc.or_kleene(bad_item, pc.is_null(items))
    suspect |= _rows_with(arr, _mask(bad_item.fill_null(True)))
    suspect |= _rows_with(arr, _non_finite(items))
    suspect |= _mask(pc.equal(pc.list_value_length(arr), 0))
    values = arr.values  # what the offsets point into
    rebuilt = pa.StructArray.from_arrays([values.field("role"), values.field("content")],
                                         names=["role", "content"])
    return pa.ListArray.from_arrays(arr.offsets, rebuilt, type=pa.list_(MESSAGE_TYPE),
                                    mask=arr.is_null())


def _non_finite(arr: pa.Array) -> np.ndarray:
    """Items holding NaN or Infinity anywhere inside (in keys the format does not name):
    pyarrow reads those literals, orjson (and JSON) does not."""
    t = arr.type
    if pa.types.is_floating(t):
        return _mask(pc.invert(pc.is_finite(arr)))
    if pa.types.is_struct(t):
        found = np.zeros(len(arr), dtype=bool)
        for child in arr.flatten():
            found |= _non_finite(child)
        return found
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return _rows_with(arr, _non_finite(pc.list_flatten(arr)))
    return np.zeros(len(arr), dtype=bool)


def _extras(table: pa.Table, part: _Part, suspect: np.ndarray) -> pa.Array:
    """Unknown fields as the per-record path keeps them, read again with orjson."""
    if all(name in KNOWN_FIELDS for name in table.schema.names):
        return pa.nulls(table.num_rows, pa.string())
    extras: list[str | None] = []
    for i in range(table.num_rows):
        try:
            extras.append(unknown_fields(orjson.loads(part.line(i))))
        except orjson.JSONDecodeError:  # e.g. NaN in an unknown field: pyarrow reads it
            suspect[i] = True
            extras.append(None)
    return pa.array(extras, pa.string())


def _merge(results: list[LinesResult], source: str) -> LinesResult:
    """One result of several, rows in line order."""
    batches = [r.batch for r in results if r.batch.num_rows]
    quarantined = sorted((q for r in results for q in r.quarantined),
                         key=lambda q: q.source_line)
    blank = sum(r.blank_lines for r in results)
    if not batches:
        return LinesResult(BatchBuilder(source).build(), quarantined, blank)
    if len(batches) == 1:
        return LinesResult(batches[0], quarantined, blank)
    table = pa.Table.from_batches(batches, schema=EXCHANGE_SCHEMA)
    lines = table.column("source_line")
    if not pc.all(pc.greater(lines.slice(1), lines.slice(0, len(lines) - 1))).as_py():
        table = table.take(pc.sort_indices(lines))
    return LinesResult(table.combine_chunks().to_batches()[0], quarantined, blank)
