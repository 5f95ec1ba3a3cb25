"""Read exchange logs in Parquet, streaming, with vectorized validation.

Columns are checked whole: a column of a compatible type (any integer width,
large strings, timestamps in any unit) is cast; a column of the wrong type
rejects every row that has a value in it. Row numbers stand in for line
numbers in quarantine rows (1-based, in file order).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from distillguard.logs.bounds import INT_RANGES, int_out_of_range, latest_allowed_ms, too_late_reason
from distillguard.logs.chunk import ReadChunk
from distillguard.logs.quarantine import QuarantineRow, quarantine_row
from distillguard.logs.records import FIELD_KINDS, parse_timestamp_ms
from distillguard.logs.schema import (
    EXCHANGE_SCHEMA,
    MESSAGE_ROLES,
    SPEC_FIELDS,
    TS_MAX_MS,
    TS_MIN_MS,
    TS_TYPE,
    empty_batch,
)

__all__ = ["read_parquet", "read_parquet_source", "storable_as_is"]

DEFAULT_BATCH_ROWS = 16_384
_ROLE_SET = pa.array(sorted(MESSAGE_ROLES))
_MIN_TS = pa.scalar(TS_MIN_MS, TS_TYPE)
_MAX_TS = pa.scalar(TS_MAX_MS, TS_TYPE)
_KIND_WORDS = {
    "str": "a string",
    "ts": "a timestamp, RFC 3339 string or epoch milliseconds",
    "bool": "a boolean",
    "int": "an integer",
    "messages": "a list of {role, content} structs",
    "str_list": "a list of strings",
}


class _Rejects:
    """First reason per rejected row, in field order."""

    def __init__(self, n: int) -> None:
        self.bad = np.zeros(n, dtype=bool)
        self.reasons: dict[int, tuple[str, str]] = {}

    def add(self, mask: Any, code: str, reason: str | Callable[[int], str]) -> None:
        """Reject the rows of ``mask``; ``reason`` is one text or a function of the row."""
        rows = np.asarray(mask, dtype=bool)
        new = rows & ~self.bad
        if new.any():
            for i in np.flatnonzero(new):
                row = int(i)
                self.reasons[row] = (code, reason if isinstance(reason, str) else reason(row))
            self.bad |= new


def _is_string(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)


def _as_mask(arr: pa.Array) -> np.ndarray:
    return np.asarray(arr.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


def _timestamps(arr: pa.Array, name: str, rejects: _Rejects, latest_ms: int) -> pa.Array:
    t = arr.type
    if pa.types.is_integer(t):
        out = arr.cast(pa.int64()).cast(TS_TYPE)
    elif pa.types.is_timestamp(t):
        out = arr.cast(TS_TYPE, safe=False)
    elif _is_string(t):
        try:
            out = arr.cast(pa.string()).cast(TS_TYPE)
        except pa.ArrowInvalid:
            out = pa.array([_parse_or_none(v) for v in arr.to_pylist()], TS_TYPE)
            unparsed = pc.and_(pc.is_valid(arr), pc.is_null(out))
            rejects.add(_as_mask(unparsed), "bad_timestamp",
                        f"field '{name}' is not a valid timestamp")
    else:
        rejects.add(_as_mask(pc.is_valid(arr)), "wrong_type",
                    f"field '{name}' must be {_KIND_WORDS['ts']}, got {t}")
        return pa.nulls(len(arr), TS_TYPE)
    out_of_range = pc.or_(pc.less(out, _MIN_TS), pc.greater_equal(out, _MAX_TS))
    rejects.add(_as_mask(out_of_range), "bad_timestamp",
                f"field '{name}' is outside 2000..2200 (seconds instead of milliseconds?)")
    late = pc.greater_equal(out, pa.scalar(latest_ms, TS_TYPE))
    rejects.add(_as_mask(late), "out_of_range",
                lambda i: too_late_reason(name, out[i].value, latest_ms))
    return out


def _parse_or_none(value: Any) -> int | None:
    try:
        return None if value is None else parse_timestamp_ms(value)
    except ValueError:
        return None


def _messages(arr: pa.Array, rejects: _Rejects) -> pa.Array:
    t = arr.type
    target = EXCHANGE_SCHEMA.field("messages").type
    ok = (pa.types.is_list(t) or pa.types.is_large_list(t)) and pa.types.is_struct(t.value_type)
    if ok:
        names = {t.value_type.field(i).name: t.value_type.field(i).type
                 for i in range(t.value_type.num_fields)}
        ok = all(k in names and _is_string(names[k]) for k in ("role", "content"))
    if not ok:
        rejects.add(_as_mask(pc.is_valid(arr)), "wrong_type",
                    f"field 'messages' must be {_KIND_WORDS['messages']}, got {t}")
        return pa.nulls(len(arr), target)
    items = pc.list_flatten(arr)
    parents = pc.list_parent_indices(arr)
    roles = items.field("role").cast(pa.string())
    contents = items.field("content").cast(pa.string())
    bad_item = pc.or_(pc.invert(pc.is_in(roles, value_set=_ROLE_SET)).fill_null(True),
                      pc.is_null(contents))
    bad_rows = np.zeros(len(arr), dtype=bool)
    bad_parents = np.asarray(pc.filter(parents, bad_item).to_numpy(zero_copy_only=False))
    bad_rows[bad_parents] = True
    empty = _as_mask(pc.equal(pc.list_value_length(arr), 0))
    rejects.add(empty, "wrong_type", "field 'messages' is empty: it needs the new user turn")
    rejects.add(bad_rows, "wrong_type",
                "a message has a role other than user, assistant, tool or no string content")
    rebuilt = pa.StructArray.from_arrays([roles, contents], names=["role", "content"])
    offsets = arr.offsets if pa.types.is_list(t) else arr.offsets.cast(pa.int32())
    return pa.ListArray.from_arrays(offsets, rebuilt, type=target, mask=pc.is_null(arr))


def _plain_type_ok(kind: str, t: pa.DataType) -> bool:
    """Whether a column of type ``t`` holds values of ``kind`` (str, int, bool, str_list)."""
    if kind == "str":
        return _is_string(t)
    if kind == "int":
        return pa.types.is_integer(t)
    if kind == "bool":
        return pa.types.is_boolean(t)
    return (pa.types.is_list(t) or pa.types.is_large_list(t)) and _is_string(t.value_type)


def _plain(arr: pa.Array, name: str, kind: str, rejects: _Rejects) -> pa.Array:
    target = EXCHANGE_SCHEMA.field(name).type
    t = arr.type
    if not _plain_type_ok(kind, t):
        rejects.add(_as_mask(pc.is_valid(arr)), "wrong_type",
                    f"field '{name}' must be {_KIND_WORDS[kind]}, got {t}")
        return pa.nulls(len(arr), target)
    try:
        out = arr.cast(target)
    except pa.ArrowInvalid:  # e.g. uint64 beyond int64
        rejects.add(_as_mask(pc.is_valid(arr)), "wrong_type",
                    f"field '{name}' does not fit in a 64-bit integer")
        return pa.nulls(len(arr), target)
    if name in INT_RANGES:
        low, high = INT_RANGES[name]
        outside = pc.or_kleene(pc.less(out, low) if low is not None else pa.scalar(False),
                               pc.greater(out, high) if high is not None else pa.scalar(False))
        rejects.add(_as_mask(outside), "out_of_range",
                    lambda i: int_out_of_range(name, out[i].as_py()) or "")
    return out


def normalize_batch(batch: pa.RecordBatch, source: str, first_row: int,
                    latest_ms: int) -> tuple[pa.RecordBatch, list[QuarantineRow]]:
    """Cast one Parquet batch to ``EXCHANGE_SCHEMA``; split off the rows that break the format.

    ``latest_ms`` is the latest timestamp allowed (``bounds.latest_allowed_ms``).
    """
    n = batch.num_rows
    rejects = _Rejects(n)
    columns: list[pa.Array] = []
    for f in SPEC_FIELDS:
        kind = FIELD_KINDS[f.name]
        idx = batch.schema.get_field_index(f.name)
        if idx < 0:
            if not f.nullable:
                rejects.add(np.ones(n, dtype=bool), "missing_field",
                            f"required field '{f.name}' is missing")
            columns.append(pa.nulls(n, f.type))
            continue
        arr = batch.column(idx)
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        if kind == "ts":
            out = _timestamps(arr, f.name, rejects, latest_ms)
        elif kind == "messages":
            out = _messages(arr, rejects)
        else:
            out = _plain(arr, f.name, kind, rejects)
        if not f.nullable:
            rejects.add(_as_mask(pc.is_null(out)), "missing_field",
                        f"required field '{f.name}' is missing")
        columns.append(out)
    known = {f.name for f in SPEC_FIELDS}
    unknown = [name for name in batch.schema.names if name not in known]
    if unknown:
        rows = batch.select(unknown).to_pylist()
        extra = pa.array([orjson.dumps(r, default=str).decode() for r in rows], pa.string())
    else:
        extra = pa.nulls(n, pa.string())
    lines = pa.array(np.arange(first_row + 1, first_row + n + 1, dtype=np.int64))
    columns += [extra, pa.repeat(pa.scalar(source), n) if n else pa.array([], pa.string()),
                lines]
    out = pa.RecordBatch.from_arrays(columns, schema=EXCHANGE_SCHEMA)
    quarantined: list[QuarantineRow] = []
    if rejects.reasons:
        for i, (code, reason) in sorted(rejects.reasons.items()):
            raw = orjson.dumps(batch.slice(i, 1).to_pylist()[0], default=str)
            quarantined.append(quarantine_row(source, first_row + i + 1, code, reason, raw))
        out = out.filter(pa.array(~rejects.bad))
    return out, quarantined


# The columns whose values the checks read; the others are checked by their type alone.
_VALUE_CHECKED = frozenset(f.name for f in SPEC_FIELDS if not f.nullable or FIELD_KINDS[f.name]
                           in ("ts", "int", "messages"))


def storable_as_is(path: Path) -> bool:
    """Whether Parquet file ``path`` can be stored as it is, read in place.

    That is when ``normalize_batch`` would keep every row and change nothing but
    types a reader casts on the fly: every column a field of the format (nothing
    for ``extra``), timestamps as timestamps or epoch milliseconds (not text,
    whose parsing is Python's), messages as exactly ``{role, content}``, and no
    row set aside. The values are checked by ``normalize_batch`` itself, reading
    only the columns it checks by value.
    """
    try:
        pf = pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 20)
        schema = pf.schema_arrow
        if not set(schema.names) <= set(FIELD_KINDS):
            return False
        for f in SPEC_FIELDS:
            kind = FIELD_KINDS[f.name]
            where = schema.get_field_index(f.name)
            if where < 0:
                if not f.nullable:
                    return False
                continue
            t = schema.field(where).type
            if kind == "ts":
                ok = pa.types.is_timestamp(t) or pa.types.is_integer(t)
            elif kind == "messages":
                ok = (pa.types.is_list(t) or pa.types.is_large_list(t)) and pa.types.is_struct(
                    t.value_type) and sorted(t.value_type.field(i).name for i in range(
                        t.value_type.num_fields)) == ["content", "role"]
            else:
                ok = _plain_type_ok(kind, t)
            if not ok:
                return False
        latest_ms = latest_allowed_ms()
        contents_counted = _no_null_contents(pf)
        columns = [name for name in schema.names if name in _VALUE_CHECKED and not (
            name == "messages" and contents_counted)]
        if contents_counted:
            columns.append("messages.list.element.role")
        row = 0
        for batch in pf.iter_batches(batch_size=DEFAULT_BATCH_ROWS * 4, columns=columns):
            if contents_counted:
                batch = _with_placeholder_contents(batch)
            if normalize_batch(batch, str(path), row, latest_ms)[1]:
                return False
            row += batch.num_rows
    except (pa.ArrowException, OSError):
        return False
    return True


def _no_null_contents(pf: pq.ParquetFile) -> bool:
    """Whether the file's statistics count no null under ``messages.list.element.content``:
    then only the roles need reading (a null there is an empty or null list, a null
    message or a null content, and the roles' read finds the first three)."""
    for g in range(pf.metadata.num_row_groups):
        group = pf.metadata.row_group(g)
        column = next((group.column(i) for i in range(group.num_columns)
                       if group.column(i).path_in_schema == "messages.list.element.content"),
                      None)
        stats = column.statistics if column is not None else None
        if stats is None or not stats.has_null_count or stats.null_count:
            return False
    return True


def _with_placeholder_contents(batch: pa.RecordBatch) -> pa.RecordBatch:
    """``messages`` read as roles only, given an empty text as content so that
    ``normalize_batch`` checks the rest (contents were checked from statistics)."""
    where = batch.schema.get_field_index("messages")
    lists = batch.column(where)
    items = lists.values
    roles = items.field("role")
    structs = pa.StructArray.from_arrays(
        [roles, pa.repeat(pa.scalar("", roles.type), len(items))], names=["role", "content"],
        mask=items.is_null())
    offsets = lists.offsets if pa.types.is_list(lists.type) else lists.offsets.cast(pa.int32())
    messages = pa.ListArray.from_arrays(offsets, structs, mask=lists.is_null())
    return batch.set_column(where, "messages", messages)


def read_parquet(path: Path, *, batch_rows: int = DEFAULT_BATCH_ROWS,
                 start_line: int = 0) -> Iterator[ReadChunk]:
    """Yield validated batches and quarantined rows from one Parquet file.

    Rows up to ``start_line`` (already ingested) are skipped. A file that is not
    Parquet, or breaks mid-way, ends with one quarantine row saying so.
    """
    yield from read_parquet_source(path, str(path), path.stat().st_size, batch_rows=batch_rows,
                                   start_line=start_line)


def read_parquet_source(where: Path | pa.NativeFile, source: str, size: int, *,
                        batch_rows: int = DEFAULT_BATCH_ROWS,
                        start_line: int = 0) -> Iterator[ReadChunk]:
    """``read_parquet`` over a path or an open file; ``source`` names it in quarantine rows."""
    row = 0
    latest_ms = latest_allowed_ms()
    try:
        # pre_buffer (the default) keeps every column chunk read so far: memory would grow
        # with the file. Buffered streaming keeps it bounded.
        pf = pq.ParquetFile(where, pre_buffer=False, buffer_size=1 << 20)
        for batch in pf.iter_batches(batch_size=batch_rows):
            first, row = row, row + batch.num_rows
            if row <= start_line:
                continue
            if first < start_line:
                batch = batch.slice(start_line - first)
                first = start_line
            out, quarantined = normalize_batch(batch, source, first, latest_ms)
            position = size * row // max(pf.metadata.num_rows, 1)
            yield ReadChunk(source, out, quarantined, row, position)
    except (pa.ArrowException, OSError) as exc:
        reason = f"file is not readable Parquet after row {row}: {exc}"
        bad = quarantine_row(source, row + 1, "corrupt_stream", reason, b"")
        yield ReadChunk(source, empty_batch(), [bad], row, size)
