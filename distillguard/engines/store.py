"""The embedded exchange store: DuckDB over Parquet.

``--db store.duckdb`` is a DuckDB file (the catalog: parts, request ids,
quarantine, ingest progress) and a folder ``store.duckdb.parts/`` of Parquet
parts holding the exchanges. Every connection sees them as the view
``exchanges``. Writing parts with pyarrow (zstd) is several times faster than
inserting long prompt text into DuckDB's own compressed storage, and the parts
are what the scan engines (DuckDB, Spark) read best. A Parquet input that fits
the store as it is is not re-encoded but linked in (``engines.linked``).

Ingest is resumable and idempotent:

- one commit holds one slice of one file: its part, its request ids, its
  quarantined records and the file's progress row (``lines_done``). A run
  killed at any point leaves the store as of its last commit (a part written
  but not committed is an orphan, deleted on the next open); the next run
  resumes after ``lines_done``;
- a file already ingested whole, unchanged (size and mtime), is skipped;
- a ``request_id`` already stored is never stored twice. When the stored copy
  came from the same file and line (a file re-read after it grew) it is counted
  as already present; otherwise the newcomer is quarantined as a duplicate,
  naming where the first copy came from;
- the quarantine of a file follows its content: reading lines again replaces
  their quarantined records, so a last line that was cut short while the file was
  being written leaves the quarantine once a later run reads it whole. A file that
  cannot be read is one ``unreadable`` record (line 0) and no progress, so the next
  run tries it again.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from distillguard.engines.duckdb_errors import map_duckdb_errors
from distillguard.engines.linked import LINKED_PREFIX, link_into, linked_select, sql_string
from distillguard.engines.parts import PartWriter, write_schema_part
from distillguard.engines.resources import EngineResources
from distillguard.engines.store_sql import CREATE_TABLES
from distillguard.logs import (
    JsonlOptions,
    QuarantineRow,
    ReadChunk,
    quarantine_row,
    read_readable_file,
    unreadable_chunk,
    unreadable_reason,
)
from distillguard.logs.adapters import UNKNOWN_FORMAT, SourceOptions
from distillguard.logs.parquet import storable_as_is
from distillguard.logs.quarantine import FILE_LINE, UNREADABLE
from distillguard.prefetch import prefetch

__all__ = ["COMMIT_ROWS", "ExchangeStore", "IngestReport"]

# Rows per commit (and per part file): bigger commits mean fewer, larger parts;
# smaller ones lose less work to a crash.
COMMIT_ROWS = 131_072

_QUARANTINE_COLUMNS = ("source_file", "source_line", "code", "reason", "raw", "raw_encoding",
                       "raw_bytes")


@dataclass
class IngestReport:
    """What one ingest run did."""

    files_read: int = 0
    files_skipped: list[str] = field(default_factory=list)
    files_unreadable: list[str] = field(default_factory=list)
    files_unknown_format: list[str] = field(default_factory=list)
    files_stored_as_is: list[str] = field(default_factory=list)
    inserted: int = 0
    already_present: int = 0
    blank_lines: int = 0
    not_exchanges: int = 0
    quarantined: Counter[str] = field(default_factory=Counter)

    @property
    def quarantined_total(self) -> int:
        return sum(self.quarantined.values())


@dataclass
class _Slice:
    """One commit in the making: a part, the ids it adds, its rejects, its progress.

    It covers the lines after ``first_line`` up to ``last_line``.
    """

    part: PartWriter
    first_line: int
    quarantined: list[QuarantineRow] = field(default_factory=list)
    last_line: int = 0
    rows: int = 0
    blank_lines: int = 0
    not_exchanges: int = 0

    @property
    def unreadable(self) -> bool:
        """The file could not be read, or its format told: no progress, tried again next run."""
        return any(q.code in (UNREADABLE, UNKNOWN_FORMAT) and q.source_line == FILE_LINE
                   for q in self.quarantined)

    @property
    def unknown_format(self) -> bool:
        return any(q.code == UNKNOWN_FORMAT for q in self.quarantined)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class ExchangeStore:
    """A DuckDB catalog plus Parquet parts holding exchanges, quarantine and progress."""

    def __init__(self, path: str | Path, *, resources: EngineResources = EngineResources(),
                 read_only: bool = False, jsonl: JsonlOptions = JsonlOptions(),
                 source: SourceOptions = SourceOptions()) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self.jsonl = jsonl
        self.resources = resources
        self.source = source
        self.parts_dir = self.path.with_name(self.path.name + ".parts")
        config = resources.duckdb_config(self.path)
        with map_duckdb_errors(f"cannot open database {self.path}"):
            if not read_only:
                self.parts_dir.mkdir(parents=True, exist_ok=True)
            self.con = duckdb.connect(str(self.path), read_only=read_only, config=config)
            self.con.execute("SET enable_progress_bar = false")
            # DuckDB would otherwise keep the Parquet parts it reads in memory, outside
            # its memory limit: memory would grow with the store.
            self.con.execute("SET enable_external_file_cache = false")
            if not read_only:
                self.con.execute(CREATE_TABLES)
                write_schema_part(self.parts_dir)
                self._remove_orphan_parts()
                self._rehash_if_engine_changed()
            self._refresh_view()

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> ExchangeStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- layout -----------------------------------------------------------------

    def part_files(self) -> list[Path]:
        """The committed part files, oldest first."""
        with map_duckdb_errors("cannot list parts"):
            names = self.con.execute("SELECT part FROM parts ORDER BY created_at, part").fetchall()
        return [self.parts_dir / n for (n,) in names]

    def _refresh_view(self) -> None:
        schema_part = str(self.parts_dir / "_schema.parquet")
        files = [schema_part, *map(str, self.part_files())]
        listing = ", ".join(sql_string(f) for f in files)
        # A stored view is seen by every cursor; a read-only connection can only make a
        # temporary one. Either is rebuilt at each open, so the store can be moved.
        kind = "TEMP VIEW" if self.read_only else "VIEW"
        with map_duckdb_errors("cannot build the exchanges view"):
            selects = [f"SELECT * FROM read_parquet([{listing}])"]
            linked = self.con.execute(
                "SELECT part, source_file FROM linked_parts ORDER BY created_at, part").fetchall()
            if linked:
                store_types = self._column_types(schema_part)
                by_types: dict[tuple[tuple[str, str], ...], list[tuple[str, str]]] = {}
                for part, source in linked:
                    path = str(self.parts_dir / part)
                    by_types.setdefault(tuple(self._column_types(path)), []).append(
                        (path, source))
                selects += [linked_select(files, dict(types), store_types)
                            for types, files in by_types.items()]
            self.con.execute(f"CREATE OR REPLACE {kind} exchanges AS "
                             + " UNION ALL ".join(selects))

    def _column_types(self, parquet_file: str) -> list[tuple[str, str]]:
        rows = self.con.execute(
            f"DESCRIBE SELECT * FROM read_parquet({sql_string(parquet_file)})").fetchall()
        return [(name, column_type) for name, column_type, *_ in rows]

    def _remove_orphan_parts(self) -> None:
        """Delete parts written by a run that died before committing them."""
        committed = {p.name for p in self.part_files()}
        with map_duckdb_errors("cannot list linked parts"):
            committed |= {n for (n,) in self.con.execute("SELECT part FROM linked_parts").fetchall()}
        for pattern in ("part-*.parquet*", f"{LINKED_PREFIX}*.parquet*"):
            for path in self.parts_dir.glob(pattern):
                if path.name not in committed:
                    path.unlink(missing_ok=True)

    def _rehash_if_engine_changed(self) -> None:
        """Stored id hashes come from DuckDB's ``hash()``; recompute them if DuckDB changed."""
        version = duckdb.__version__
        with map_duckdb_errors("cannot check the id hashes"):
            row = self.con.execute(
                "SELECT value FROM store_meta WHERE key = 'hash_engine'").fetchone()
            if row is None or row[0] != version:
                self.con.begin()
                self.con.execute("UPDATE exchange_ids SET id_hash = hash(request_id)")
                self.con.execute("INSERT OR REPLACE INTO store_meta VALUES ('hash_engine', ?)",
                                 [version])
                self.con.commit()

    # -- ingest -------------------------------------------------------------------

    def ingest(self, files: Iterable[Path], *,
               on_progress: Callable[[Path, int], None] | None = None) -> IngestReport:
        """Load log files, resuming any that an earlier run left part-way."""
        report = IngestReport()
        for path in files:
            resolved = path.resolve()
            key = str(resolved)
            problem = unreadable_reason(path)
            stat = None if problem else resolved.stat()
            state = self._file_state(key)
            if stat and state and state["done"] and (state["size"], state["mtime_ns"]) == (
                    stat.st_size, stat.st_mtime_ns):
                report.files_skipped.append(str(path))
            elif stat and state is None and key.lower().endswith(".parquet") and \
                    self._store_as_is(resolved, key, stat, report):
                report.files_read += 1
            else:
                start = state["lines_done"] if state and not state["done"] else 0
                report.files_read += 1
                if problem:
                    chunks = iter([unreadable_chunk(key, problem)])
                else:
                    chunks = prefetch(read_readable_file(resolved, start_line=start, jsonl=self.jsonl,
                                                source=self.source))
                self._ingest_file(path, chunks, key, stat, start, report, on_progress)
            if on_progress and stat:
                on_progress(path, stat.st_size)
        # Once per run, not per commit: the view reads every part's footer.
        self._refresh_view()
        return report

    def _ingest_file(self, path: Path, chunks: Iterator[ReadChunk], key: str,
                     stat: os.stat_result | None, start: int, report: IngestReport,
                     on_progress: Callable[[Path, int], None] | None) -> None:
        current: _Slice | None = None
        try:
            for chunk in chunks:
                if current is None:
                    current = self._begin_slice(start)
                self._add_chunk(current, chunk, report)
                if current.rows >= COMMIT_ROWS:
                    self._commit_slice(current, key, stat, done=False, report=report)
                    start, current = current.last_line, None
                if on_progress:
                    on_progress(path, chunk.position)
            if current is None:
                current = self._begin_slice(start)
            self._commit_slice(current, key, stat, done=True, report=report)
        except BaseException:
            if current is not None:
                current.part.discard()
                self.con.rollback()
            raise

    def _store_as_is(self, path: Path, key: str, stat: os.stat_result,
                     report: IngestReport) -> bool:
        """Link a Parquet file whose rows all pass, unchanged, with request ids new to the
        store (and to each other); False, having changed nothing, for any other file."""
        if not storable_as_is(path):
            return False
        with map_duckdb_errors(f"cannot store {key} as it is"):
            self.con.begin()
            source = sql_string(key)
            repeats = self.con.execute(
                f"SELECT count(*) - count(DISTINCT request_id) FROM read_parquet({source})"
            ).fetchone()[0]
            known = self.con.execute(
                f"SELECT count(*) FROM read_parquet({source}) n SEMI JOIN exchange_ids e "
                "ON hash(n.request_id) = e.id_hash AND n.request_id = e.request_id").fetchone()[0]
            if repeats or known:
                self.con.rollback()
                return False
            name = link_into(self.parts_dir, path)
            try:
                rows = self.con.execute(
                    "INSERT INTO exchange_ids SELECT hash(request_id), request_id, ?, "
                    f"file_row_number + 1 FROM read_parquet({source}, file_row_number = true)",
                    [key]).fetchone()[0]
                now = _now()
                self.con.execute("INSERT INTO linked_parts VALUES (?, ?, ?, ?)",
                                 [name, rows, key, now])
                self._replace_quarantine(key, 0, None, [], now)
                self.con.execute(
                    "INSERT OR REPLACE INTO ingested_files VALUES (?, ?, ?, ?, ?, ?)",
                    [key, stat.st_size, stat.st_mtime_ns, rows, True, now])
                self.con.commit()
            except BaseException:
                self.con.rollback()
                (self.parts_dir / name).unlink(missing_ok=True)
                raise
        report.inserted += rows
        report.files_stored_as_is.append(key)
        return True

    def _begin_slice(self, start: int) -> _Slice:
        with map_duckdb_errors("cannot start a transaction"):
            self.con.begin()
        return _Slice(part=PartWriter(self.parts_dir), first_line=start, last_line=start)

    def _add_chunk(self, current: _Slice, chunk: ReadChunk, report: IngestReport) -> None:
        current.quarantined += chunk.quarantined
        current.last_line = chunk.last_line
        current.blank_lines += chunk.blank_lines
        current.not_exchanges += chunk.not_exchanges
        current.rows += chunk.batch.num_rows + len(chunk.quarantined)
        batch = chunk.batch
        if not batch.num_rows:
            return
        with map_duckdb_errors(f"cannot check request ids of {chunk.source_file}"):
            batch, duplicates, present = self._drop_duplicates(batch)
            current.quarantined += duplicates
            report.already_present += present
            if batch.num_rows:
                ids = batch.select(["request_id", "source_file", "source_line"])  # noqa: F841
                self.con.execute("INSERT INTO exchange_ids SELECT hash(request_id), request_id, "
                                 "source_file, source_line FROM ids")
        current.part.write(batch)

    def _commit_slice(self, current: _Slice, key: str, stat: os.stat_result | None, *,
                      done: bool,
                      report: IngestReport) -> None:
        now = _now()
        with map_duckdb_errors(f"cannot commit exchanges from {key}"):
            if current.part.finish():
                self.con.execute("INSERT INTO parts VALUES (?, ?, ?, ?)",
                                 [current.part.name, current.part.rows, key, now])
            last = None if done else current.last_line
            self._replace_quarantine(key, current.first_line, last, current.quarantined, now)
            if current.unknown_format:
                report.files_unknown_format.append(key)
            elif current.unreadable or stat is None:
                report.files_unreadable.append(key)
            else:
                self.con.execute(
                    "INSERT OR REPLACE INTO ingested_files VALUES (?, ?, ?, ?, ?, ?)",
                    [key, stat.st_size, stat.st_mtime_ns, current.last_line, done, now])
            self.con.commit()
        report.inserted += current.part.rows
        report.blank_lines += current.blank_lines
        report.not_exchanges += current.not_exchanges
        report.quarantined.update(q.code for q in current.quarantined)

    def _drop_duplicates(self, batch: pa.RecordBatch
                         ) -> tuple[pa.RecordBatch, list[QuarantineRow], int]:
        """Drop rows whose request_id is already stored or repeats inside ``batch``.

        A repeat is named after the copy that is stored: the one in the store, else the
        first in the batch. Within one file it says ``line N``, so the reason does not
        depend on where the reader cut its batches.
        """
        keep = np.ones(batch.num_rows, dtype=bool)
        duplicates: list[QuarantineRow] = []
        present = 0
        ids = batch.column("request_id")
        lines = batch.column("source_line")
        source = batch.column("source_file")
        incoming = pa.table({"request_id": ids, "row": np.arange(batch.num_rows)})  # noqa: F841
        clashes = self.con.execute(
            "WITH hit AS (SELECT n.row, n.request_id, hash(n.request_id) AS h FROM incoming n "
            "SEMI JOIN exchange_ids e ON hash(n.request_id) = e.id_hash) "
            "SELECT hit.row, e.source_file, e.source_line FROM hit JOIN exchange_ids e "
            "ON e.id_hash = hit.h AND e.request_id = hit.request_id "
            "WHERE e.id_hash IN (SELECT h FROM hit)").fetchall()
        for row, old_file, old_line in clashes:
            keep[row] = False
            if (source[row].as_py(), lines[row].as_py()) == (old_file, old_line):
                present += 1
            else:
                where = f"line {old_line}" if old_file == source[row].as_py() else \
                    f"{old_file}:{old_line}"
                duplicates.append(_duplicate_row(batch, row, where))
        if pc.count_distinct(ids).as_py() != batch.num_rows:
            first_seen: dict[str, int] = {}
            for i, rid in enumerate(ids.to_pylist()):
                if not keep[i]:
                    continue
                if rid in first_seen:
                    keep[i] = False
                    where = f"line {lines[first_seen[rid]].as_py()}"
                    duplicates.append(_duplicate_row(batch, i, where))
                else:
                    first_seen[rid] = i
        if keep.all():
            return batch, duplicates, present
        return batch.filter(pa.array(keep)), duplicates, present

    def _replace_quarantine(self, key: str, after_line: int, last_line: int | None,
                            rows: list[QuarantineRow], now: datetime) -> None:
        """Make ``rows`` the quarantine of file ``key`` over the lines just read.

        Those are the lines after ``after_line`` up to ``last_line`` (None: to the end),
        and the file as a whole (line ``FILE_LINE``): records there that the new reading
        no longer rejects leave, records it rejects again stay as they were.
        """
        table = pa.table({name: pa.array([getattr(r, name) for r in rows],
                                         type=pa.int64() if name in ("source_line", "raw_bytes")
                                         else pa.string())
                          for name in _QUARANTINE_COLUMNS})
        self.con.register("_quarantine", table)
        self.con.execute(
            "DELETE FROM quarantine q WHERE q.source_file = $file "
            "AND (q.source_line = $line OR (q.source_line > $after "
            "AND ($last IS NULL OR q.source_line <= $last))) "
            "AND NOT EXISTS (SELECT 1 FROM _quarantine n WHERE n.source_file = q.source_file "
            "AND n.source_line = q.source_line AND n.code = q.code)",
            {"file": key, "line": FILE_LINE, "after": after_line, "last": last_line})
        # A file read again meets its bad lines again: keep one row each.
        self.con.execute(
            f"INSERT INTO quarantine SELECT {', '.join(_QUARANTINE_COLUMNS)}, ? "
            "FROM _quarantine n WHERE NOT EXISTS (SELECT 1 FROM quarantine q "
            "WHERE q.source_file = n.source_file AND q.source_line = n.source_line "
            "AND q.code = n.code)", [now])
        self.con.unregister("_quarantine")

    def _file_state(self, key: str) -> dict[str, Any] | None:
        with map_duckdb_errors("cannot read ingest progress"):
            row = self.con.execute(
                "SELECT size, mtime_ns, lines_done, done FROM ingested_files WHERE path = ?",
                [key]).fetchone()
        if row is None:
            return None
        return dict(zip(("size", "mtime_ns", "lines_done", "done"), row, strict=True))

    # -- reading back ---------------------------------------------------------------

    def export_quarantine(self, out: Path) -> int:
        """Write every quarantined record to ``out`` as JSON Lines; return how many."""
        tmp = out.with_name(out.name + ".tmp")
        with map_duckdb_errors("cannot export quarantine"):
            n = self.con.execute("SELECT count(*) FROM quarantine").fetchone()[0]
            self.con.execute(
                f"COPY (SELECT {', '.join(_QUARANTINE_COLUMNS)} FROM quarantine "
                f"ORDER BY source_file, source_line) TO {sql_string(str(tmp))} (FORMAT json)")
        tmp.replace(out)
        return int(n)


def _duplicate_row(batch: pa.RecordBatch, i: int, first: str) -> QuarantineRow:
    row = batch.slice(i, 1).to_pylist()[0]
    source, line = row.pop("source_file"), row.pop("source_line")
    reason = f"duplicate request_id '{row['request_id']}': first stored from {first}"
    raw = orjson.dumps({k: v for k, v in row.items() if v is not None}, default=str)
    return quarantine_row(source, line, "duplicate_request_id", reason, raw)
