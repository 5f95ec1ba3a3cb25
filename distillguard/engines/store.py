"""The embedded exchange store: a DuckDB database file.

Ingest is resumable and idempotent:

- every commit holds one slice of one file together with the file's progress
  row (``ingested_files.lines_done``), so a run killed at any point leaves the
  database as of its last commit, and the next run resumes after that line;
- a file already ingested whole, unchanged (size and mtime), is skipped;
- a ``request_id`` already stored is never stored twice. When the stored copy
  came from the same file and line (a file re-read after it grew) it is simply
  counted as already present; otherwise the newcomer is quarantined as a
  duplicate naming where the first copy came from.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from distillguard.engines.duckdb_errors import map_duckdb_errors
from distillguard.engines.store_sql import CREATE_TABLES
from distillguard.logs import EXCHANGE_SCHEMA, QuarantineRow, ReadChunk, quarantine_row, read_file
from distillguard.logs.schema import TS_TYPE

__all__ = ["DEFAULT_MEMORY_LIMIT", "ExchangeStore", "IngestReport"]

DEFAULT_MEMORY_LIMIT = "1GB"
# Rows gathered before one commit: bigger commits amortize the duplicate check
# (one scan of the stored request_ids per commit); smaller ones lose less work
# to a crash and hold less memory.
COMMIT_ROWS = 65_536

_STORE_SCHEMA = pa.schema([
    f.with_type(pa.timestamp("ms")) if f.type == TS_TYPE else f for f in EXCHANGE_SCHEMA
])
_QUARANTINE_COLUMNS = ("source_file", "source_line", "code", "reason", "raw", "raw_encoding",
                       "raw_bytes")


@dataclass
class IngestReport:
    """What one ingest run did."""

    files_read: int = 0
    files_skipped: list[str] = field(default_factory=list)
    inserted: int = 0
    already_present: int = 0
    quarantined: Counter[str] = field(default_factory=Counter)

    @property
    def quarantined_total(self) -> int:
        return sum(self.quarantined.values())


class ExchangeStore:
    """A DuckDB database holding exchanges, quarantined records and ingest progress."""

    def __init__(self, path: str | Path, *, memory_limit: str = DEFAULT_MEMORY_LIMIT,
                 threads: int | None = None, read_only: bool = False) -> None:
        self.path = Path(path)
        config: dict[str, Any] = {"memory_limit": memory_limit,
                                  "preserve_insertion_order": False}
        if threads:
            config["threads"] = threads
        with map_duckdb_errors(f"cannot open database {self.path}"):
            if not read_only:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self.con = duckdb.connect(str(self.path), read_only=read_only, config=config)
            self.con.execute("SET enable_progress_bar = false")
            if not read_only:
                self.con.execute(CREATE_TABLES)

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> ExchangeStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- ingest ---------------------------------------------------------------

    def ingest(self, files: Iterable[Path], *,
               on_progress: Callable[[Path, int], None] | None = None) -> IngestReport:
        """Load log files, resuming any that an earlier run left part-way."""
        report = IngestReport()
        for path in files:
            stat = path.stat()
            key = str(path.resolve())
            state = self._file_state(key)
            if state and state["done"] and (state["size"], state["mtime_ns"]) == (
                    stat.st_size, stat.st_mtime_ns):
                report.files_skipped.append(str(path))
                if on_progress:
                    on_progress(path, stat.st_size)
                continue
            start = state["lines_done"] if state and not state["done"] else 0
            report.files_read += 1
            pending: list[ReadChunk] = []
            pending_rows = 0
            last_line = start
            for chunk in read_file(path.resolve(), start_line=start):
                pending.append(chunk)
                pending_rows += chunk.batch.num_rows + len(chunk.quarantined)
                last_line = chunk.last_line
                if pending_rows >= COMMIT_ROWS:
                    self._commit(key, stat, pending, last_line, done=False, report=report)
                    pending, pending_rows = [], 0
                if on_progress:
                    on_progress(path, chunk.position)
            self._commit(key, stat, pending, last_line, done=True, report=report)
            if on_progress:
                on_progress(path, stat.st_size)
        return report

    def _file_state(self, key: str) -> dict[str, Any] | None:
        with map_duckdb_errors("cannot read ingest progress"):
            rows = self.con.execute(
                "SELECT size, mtime_ns, lines_done, done FROM ingested_files WHERE path = ?",
                [key]).fetchall()
        if not rows:
            return None
        size, mtime_ns, lines_done, done = rows[0]
        return {"size": size, "mtime_ns": mtime_ns, "lines_done": lines_done, "done": done}

    def _commit(self, key: str, stat: Any, chunks: list[ReadChunk], last_line: int, *,
                done: bool, report: IngestReport) -> None:
        batches = [c.batch for c in chunks if c.batch.num_rows]
        quarantined = [q for c in chunks for q in c.quarantined]
        with map_duckdb_errors(f"cannot store exchanges from {key}"):
            self.con.begin()
            try:
                if batches:
                    table = pa.Table.from_batches(batches).cast(_STORE_SCHEMA)
                    table, dup_rows, present = self._split_duplicates(table)
                    quarantined += dup_rows
                    report.already_present += present
                    if table.num_rows:
                        self.con.register("_incoming", table)
                        self.con.execute("INSERT INTO exchanges SELECT * FROM _incoming")
                        self.con.unregister("_incoming")
                        report.inserted += table.num_rows
                if quarantined:
                    self._insert_quarantine(quarantined)
                self.con.execute(
                    "INSERT OR REPLACE INTO ingested_files VALUES (?, ?, ?, ?, ?, now()::TIMESTAMP)",
                    [key, stat.st_size, stat.st_mtime_ns, last_line, done])
                self.con.commit()
            except BaseException:
                self.con.rollback()
                raise
        report.quarantined.update(q.code for q in quarantined)

    def _split_duplicates(self, table: pa.Table) -> tuple[pa.Table, list[QuarantineRow], int]:
        """Drop rows whose request_id is already stored or repeats inside ``table``."""
        keep = np.ones(table.num_rows, dtype=bool)
        dup_rows: list[QuarantineRow] = []
        present = 0
        ids = table.column("request_id")
        if pc.count_distinct(ids).as_py() != table.num_rows:
            first_seen: dict[str, int] = {}
            lines = table.column("source_line").to_pylist()
            for i, rid in enumerate(ids.to_pylist()):
                if rid in first_seen:
                    keep[i] = False
                    j = first_seen[rid]
                    dup_rows.append(self._duplicate_row(table, i, f"line {lines[j]}"))
                else:
                    first_seen[rid] = i
        self.con.register("_incoming_ids", table.select(["request_id", "source_file",
                                                          "source_line"]))
        clashes = self.con.execute(
            "SELECT i.request_id, i.source_file, i.source_line, e.source_file, e.source_line "
            "FROM _incoming_ids i JOIN exchanges e USING (request_id)").fetchall()
        self.con.unregister("_incoming_ids")
        if clashes:
            index = {(f, ln): i for i, (f, ln) in enumerate(zip(
                table.column("source_file").to_pylist(), table.column("source_line").to_pylist(),
                strict=True))}
            for _rid, new_file, new_line, old_file, old_line in clashes:
                i = index[(new_file, new_line)]
                if not keep[i]:
                    continue
                keep[i] = False
                if (new_file, new_line) == (old_file, old_line):
                    present += 1
                else:
                    dup_rows.append(self._duplicate_row(table, i, f"{old_file}:{old_line}"))
        if keep.all():
            return table, dup_rows, present
        return table.filter(pa.array(keep)), dup_rows, present

    @staticmethod
    def _duplicate_row(table: pa.Table, i: int, first: str) -> QuarantineRow:
        row = table.slice(i, 1).to_pylist()[0]
        source, line = row.pop("source_file"), row.pop("source_line")
        reason = f"duplicate request_id '{row['request_id']}': first stored from {first}"
        raw = orjson.dumps({k: v for k, v in row.items() if v is not None}, default=str)
        return quarantine_row(source, line, "duplicate_request_id", reason, raw)

    def _insert_quarantine(self, rows: list[QuarantineRow]) -> None:
        columns = {name: [getattr(r, name) for r in rows] for name in _QUARANTINE_COLUMNS}
        table = pa.table(columns)
        self.con.register("_quarantine", table)
        # A file re-read from the start meets its bad lines again: keep one row each.
        self.con.execute(
            f"INSERT INTO quarantine ({', '.join(_QUARANTINE_COLUMNS)}) "
            f"SELECT {', '.join(_QUARANTINE_COLUMNS)} FROM _quarantine n WHERE NOT EXISTS ("
            "SELECT 1 FROM quarantine q WHERE q.source_file = n.source_file "
            "AND q.source_line = n.source_line AND q.code = n.code)")
        self.con.unregister("_quarantine")

    # -- reading back -----------------------------------------------------------

    def export_quarantine(self, out: Path) -> int:
        """Write every quarantined record to ``out`` as JSON Lines; return how many."""
        with map_duckdb_errors("cannot export quarantine"):
            n = self.con.execute("SELECT count(*) FROM quarantine").fetchone()[0]
            tmp = out.with_name(out.name + ".tmp")
            self.con.execute(
                f"COPY (SELECT {', '.join(_QUARANTINE_COLUMNS)} FROM quarantine "
                f"ORDER BY source_file, source_line) TO {_sql_string(str(tmp))} (FORMAT json)")
        tmp.replace(out)
        return int(n)


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
