"""What the batch scan needs from an engine, and the embedded DuckDB one.

The scan (``engines.scan``) is written once against ``SqlEngine``: it runs the
SQL of ``behavior``, ``linkage`` and ``verdict`` (DuckDB dialect), keeps small
results in Python, and hands tables back. ``DuckDBEngine`` runs on one
machine over the store's Parquet parts; ``SparkEngine`` (``engines.spark_engine``)
runs the same text on a cluster.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager, suppress
from typing import Any, Protocol, TypeVar

import duckdb
import pyarrow as pa

from distillguard.engines.duckdb_errors import map_duckdb_errors
from distillguard.engines.resources import parse_memory
from distillguard.errors import ResourceError
from distillguard.signals.lexicon import Lexicon
from distillguard.signals.near_duplicates import SketchParams
from distillguard.signals.sampled_rows import (
    SIGNAL_INPUT_COLUMNS,
    SIGNAL_ROW_SCHEMA,
    sampled_signal_rows,
)
from distillguard.signals.sampling import AccountCounts

__all__ = ["EXCHANGE_LOOKUP_COLUMNS", "DuckDBEngine", "SqlEngine"]

Params = dict[str, Any] | None
T = TypeVar("T")
# What ``SqlEngine.exchange_rows`` returns per exchange, after its request_id.
EXCHANGE_LOOKUP_COLUMNS = ("system", "messages")


class SqlEngine(Protocol):
    """Tables by name, SQL over them, and the per-exchange signals step.

    ``threads``: how many threads the scan's own work in this process (the account
    graph's nearest neighbours) may use.
    """

    threads: int

    def materialize(self, name: str, sql: str, params: Params = None) -> None:
        """Store the result of ``sql`` as table ``name`` (replacing it)."""

    def rows(self, sql: str, params: Params = None) -> list[tuple[Any, ...]]:
        """The result of ``sql`` as Python tuples (for small results)."""

    def arrow(self, sql: str, params: Params = None) -> pa.Table:
        """The result of ``sql`` as an Arrow table (for results of many rows)."""

    def register(self, name: str, table: pa.Table) -> None:
        """Make ``table`` (built in Python) readable as table ``name``."""

    def compute_signals(self, per_account: int, lexicon: Lexicon,
                        on_rows: Callable[[int], None] | None = None,
                        sketch: SketchParams | None = None) -> int:
        """Create table ``signals`` (``SIGNAL_ROW_SCHEMA``): ``signals.sampled_signal_rows``
        over every exchange, given its account's count from ``account_behavior``; return
        its size."""

    def exchange_rows(self, picks: list[tuple[str, Any]]) -> list[tuple[Any, ...]]:
        """A few exchanges by (request_id, ts): request_id then ``EXCHANGE_LOOKUP_COLUMNS``."""

    def quarantined(self) -> int:
        """How many input records were quarantined."""

    def aggregate_parts(self, rows: int, bytes_per_row: int) -> int:
        """In how many parts to run an aggregation whose hash tables hold about ``rows``
        rows of ``bytes_per_row`` so that each part fits the engine's memory (1 for an
        engine that spreads and spills them itself)."""

    def memory_lent(self) -> AbstractContextManager[None]:
        """While Python works on its own arrays and runs no query, the engine keeps
        as little memory as it can (an engine in other processes: nothing to do)."""


# DuckDB's memory limit while Python builds the account graph (``memory_lent``).
LENT_MEMORY_FLOOR = 64 * 2**20
# A query's progress, polled this often when someone watches it.
PROGRESS_POLL_SECONDS = 0.5


class DuckDBEngine:
    """The embedded engine: one DuckDB connection over an ``ExchangeStore``.

    ``memory``: the connection's ``memory_limit`` as it was set (``--memory``, checked
    by ``EngineResources``), which ``memory_lent`` puts back (DuckDB shows it rounded);
    None: nothing is lent.
    ``on_query_progress(table, percent)`` is called while a table is being built
    (from another thread, every half second), for a progress bar with an ETA.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, *, threads: int = 2,
                 batch_rows: int = 8192, memory: str | None = None,
                 on_query_progress: Callable[[str, float], None] | None = None) -> None:
        self.con = con
        self.threads = threads
        self.memory = memory
        self.batch_rows = batch_rows
        self.on_query_progress = on_query_progress
        if on_query_progress is not None:
            with map_duckdb_errors("cannot track query progress"):
                con.execute("SET enable_progress_bar = true")
                con.execute("SET enable_progress_bar_print = false")

    @contextmanager
    def _watched(self, name: str) -> Iterator[None]:
        """Report the progress of the query run inside, if anyone listens."""
        report = self.on_query_progress
        if report is None:
            yield
            return
        done = threading.Event()

        def poll() -> None:
            while not done.wait(PROGRESS_POLL_SECONDS):
                percent = self.con.query_progress()
                if percent >= 0:
                    report(name, percent)

        watcher = threading.Thread(target=poll, name=f"progress-{name}", daemon=True)
        watcher.start()
        try:
            yield
        finally:
            done.set()
            watcher.join()
            report(name, 100.0)

    def materialize(self, name: str, sql: str, params: Params = None) -> None:
        with map_duckdb_errors(f"cannot build {name}"), self._watched(name):
            self.con.execute(f"CREATE OR REPLACE TABLE {name} AS {sql}", params or {})

    def rows(self, sql: str, params: Params = None) -> list[tuple[Any, ...]]:
        return self._retried("query failed",
                             lambda: self.con.execute(sql, params or {}).fetchall())

    def arrow(self, sql: str, params: Params = None) -> pa.Table:
        return self._retried("query failed",
                             lambda: self.con.sql(sql, params=params or {}).to_arrow_table())

    def _retried(self, what: str, run: Callable[[], T]) -> T:
        """``run()``; when DuckDB runs out of memory, once more after its cached pages were
        evicted.

        A query that needs little memory can still fail when the buffer pool is full of
        pages other queries left there (seen at 16.2M exchanges: the campaign profiles'
        count over template uses, 3 s and well under the limit on its own, failed after
        the account graph with 953.6 of 953.6 MiB used, in both runs of that day's first
        code). A query too big for the limit fails twice, as it would have once.
        """
        try:
            with map_duckdb_errors(what):
                return run()
        except ResourceError as exc:
            if self.memory is None or not isinstance(exc.__cause__, duckdb.OutOfMemoryException):
                raise
        self._evict_pages()
        with map_duckdb_errors(what):
            return run()

    def _set_memory_limit(self, limit: str) -> None:
        with map_duckdb_errors("cannot set the memory limit"):
            self.con.execute(f"SET memory_limit = '{limit}'")

    def _evict_pages(self) -> None:
        """Lower the memory limit to the floor and put it back: DuckDB evicts every page it
        can to get under it (those still pinned stay)."""
        assert self.memory is not None
        with suppress(ResourceError):
            self._set_memory_limit(f"{LENT_MEMORY_FLOOR}B")
        self._set_memory_limit(self.memory)

    def register(self, name: str, table: pa.Table) -> None:
        with map_duckdb_errors(f"cannot store {name}"):
            self.con.register("_incoming", table)
            try:
                self.con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM _incoming")
            finally:
                self.con.unregister("_incoming")

    def compute_signals(self, per_account: int, lexicon: Lexicon,
                        on_rows: Callable[[int], None] | None = None,
                        sketch: SketchParams | None = None) -> int:
        """Stream the exchanges out of DuckDB and score them in worker threads
        (pyarrow's kernels release the GIL, so the cores share the work).

        Accounts' counts are attached in Python: joining them in SQL made DuckDB
        carry every exchange's text through a hash join (5x slower, measured).
        """
        self.register("signals", SIGNAL_ROW_SCHEMA.empty_table())
        counts = self.arrow("SELECT account_id, exchanges FROM account_behavior")
        account_counts = AccountCounts(counts.column("account_id").combine_chunks(),
                                       counts.column("exchanges").to_numpy())
        written = 0
        with map_duckdb_errors("cannot read exchanges for signals"):
            reader = self.con.cursor().sql(
                f"SELECT {', '.join(SIGNAL_INPUT_COLUMNS)} FROM exchanges"
            ).to_arrow_reader(self.batch_rows)

        def score(batch: pa.RecordBatch) -> pa.RecordBatch:
            n = account_counts.of(batch.column("account_id"))
            return sampled_signal_rows(batch.append_column("account_exchanges", pa.array(n)),
                                       per_account, lexicon, sketch)

        with ThreadPoolExecutor(max_workers=self.threads) as pool:
            pending = []
            for batch in reader:
                pending.append(pool.submit(score, batch))
                if len(pending) >= self.threads * 2:
                    written += self._append(pending.pop(0).result())
                if on_rows:
                    on_rows(batch.num_rows)
            for future in pending:
                written += self._append(future.result())
        # The batches' buffers go back to the system rather than stay in Arrow's pool:
        # nothing after this stage needs that much at once (resident memory after the
        # stage at 15.6M exchanges was 1.5 GB, DuckDB's 1 GB limit included).
        pa.default_memory_pool().release_unused()
        return written

    def exchange_rows(self, picks: list[tuple[str, Any]]) -> list[tuple[Any, ...]]:
        """One query per pick: its time lets the Parquet reader skip all but a row group
        or two (one join over all picks would read every exchange's text)."""
        columns = ", ".join(("request_id", *EXCHANGE_LOOKUP_COLUMNS))
        out: list[tuple[Any, ...]] = []
        for request_id, ts in picks:
            out += self.rows(f"SELECT {columns} FROM exchanges WHERE ts = $ts AND request_id = $id",
                             {"ts": ts, "id": request_id})
        return out

    def _append(self, rows: pa.RecordBatch) -> int:
        if rows.num_rows:
            incoming = pa.Table.from_batches([rows])  # noqa: F841 - read by DuckDB
            with map_duckdb_errors("cannot store signals"):
                self.con.execute("INSERT INTO signals SELECT * FROM incoming")
        return rows.num_rows

    def quarantined(self) -> int:
        return self.rows("SELECT count(*) FROM quarantine")[0][0]

    def aggregate_parts(self, rows: int, bytes_per_row: int) -> int:
        return max(1, -(-rows * bytes_per_row // self._memory_limit()))

    def _memory_limit(self) -> int:
        return parse_memory(self.rows(
            "SELECT value FROM duckdb_settings() WHERE name = 'memory_limit'")[0][0])

    @contextmanager
    def memory_lent(self) -> Iterator[None]:
        """DuckDB keeps its buffer pool's pages up to ``memory_limit`` (``--memory``)
        resident; lowering the limit evicts them, so the account graph's arrays get
        that memory (measured on a scale-0.1 store: 420 -> 82 MB resident). The
        limit is put back after.

        Lending is a saving, never a condition: when DuckDB holds more than the floor
        in pages it cannot evict (an in-memory store with no temp directory, pinned
        blocks; seen on a 27M-exchange scan, which then failed after 14 minutes), the
        limit goes as low as what it holds, else stays as it is."""
        if self.memory is None:
            yield
            return
        self._lower_memory_limit()
        try:
            yield
        finally:
            self._set_memory_limit(self.memory)

    def _lower_memory_limit(self) -> None:
        """Set the limit to ``LENT_MEMORY_FLOOR``, or to what DuckDB holds if it cannot
        free that much, or leave it."""
        try:
            self._set_memory_limit(f"{LENT_MEMORY_FLOOR}B")
            return
        except ResourceError:
            pass
        with map_duckdb_errors("cannot read the engine's memory use"):
            held = int(self.con.execute(
                "SELECT coalesce(sum(memory_usage_bytes), 0) FROM duckdb_memory()"
            ).fetchall()[0][0])
        if held * 5 // 4 < parse_memory(self.memory):
            with suppress(ResourceError):
                self._set_memory_limit(f"{max(held * 5 // 4, LENT_MEMORY_FLOOR)}B")
