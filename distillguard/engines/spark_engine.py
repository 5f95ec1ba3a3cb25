"""The scale-out engine: the scan's SQL and signal functions on Apache Spark.

Tables are temporary views over persisted DataFrames. The SQL of
``behavior``, ``linkage`` and ``verdict`` is translated from DuckDB's dialect
(``engines.spark_sql``); per-exchange signals run on the executors through
``mapInArrow`` with ``signals.sampled_signal_rows``, the function the DuckDB
engine runs in its threads. Small results (per account and smaller) come back
to the driver, where the account graph and its communities are computed
(``linkage.account_graph``) exactly as on one machine.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import pyarrow as pa

from distillguard.engines.spark_input import QUARANTINE_FIELDS, read_logs, write_quarantine
from distillguard.engines.spark_sql import to_spark_sql
from distillguard.engines.sql_engine import EXCHANGE_LOOKUP_COLUMNS
from distillguard.errors import EngineError
from distillguard.logs.adapters import SourceOptions
from distillguard.signals.lexicon import Lexicon
from distillguard.signals.near_duplicates import SketchParams
from distillguard.signals.sampled_rows import (
    SIGNAL_INPUT_COLUMNS,
    SIGNAL_ROW_SCHEMA,
    sampled_signal_rows,
)

__all__ = ["SparkEngine"]

Params = dict[str, Any] | None
# Every exchange with its account's exchange count (which sets its sampling rate).
SIGNALS_INPUT_SQL = (
    f"SELECT {', '.join('e.' + c for c in SIGNAL_INPUT_COLUMNS)}, b.exchanges AS account_exchanges "
    "FROM exchanges e JOIN account_behavior b USING (account_id)")


def _signals_body(per_account: int, lexicon: Lexicon,
                  sketch: SketchParams | None) -> Callable[..., Any]:
    def body(batches: Any) -> Any:
        for batch in batches:
            rows = sampled_signal_rows(batch, per_account, lexicon, sketch)
            if rows.num_rows:
                yield rows
    return body


class SparkEngine:
    """``SqlEngine`` over a ``SparkSession``; ``load`` reads the logs first."""

    def __init__(self, spark: Any) -> None:
        self.spark = spark
        self.threads = os.cpu_count() or 1  # the driver's, for the account graph
        self._tables: dict[str, Any] = {}
        self._quarantine: Any = None

    def _sql(self, sql: str, params: Params) -> Any:
        try:
            return self.spark.sql(to_spark_sql(sql), args=params or None)
        except Exception as exc:
            msg = f"Spark query failed: {exc}"
            raise EngineError(msg) from exc

    def _keep(self, name: str, frame: Any, *, on_disk: bool = False) -> None:
        """Compute ``frame`` now, keep it on the executors, and serve it as view ``name``.

        A local checkpoint, not ``persist``: it cuts the lineage, so later queries
        plan against a small leaf instead of every step before it (with ``persist``,
        planning alone grew to tens of seconds per query by the end of a scan).
        """
        from pyspark import StorageLevel

        try:
            frame = frame.localCheckpoint(
                eager=True, storageLevel=StorageLevel.DISK_ONLY if on_disk else None)
        except Exception as exc:
            msg = f"cannot build {name} on Spark: {exc}"
            raise EngineError(msg) from exc
        old = self._tables.pop(name, None)
        frame.createOrReplaceTempView(name)
        self._tables[name] = frame
        if old is not None:
            old.unpersist()

    def load(self, logs: list[str], source: SourceOptions = SourceOptions()) -> None:
        """Read every record under ``logs``: valid exchanges become view ``exchanges``
        (the first record of a repeated ``request_id`` wins, as in the store), the rest
        view ``quarantine``."""
        # One file per Arrow batch while decoding: a batch holds whole files' bytes,
        # and the default (10,000 rows) would put a partition's files in one batch.
        previous = self.spark.conf.get("spark.sql.execution.arrow.maxRecordsPerBatch")
        self.spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", "1")
        try:
            self._load(logs, source)
        finally:
            self.spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", previous)

    def _load(self, logs: list[str], source: SourceOptions) -> None:
        """Decode once into one checkpoint (``_records``); ``exchanges`` is a view over it
        that leaves out quarantined records and repeats (a filter and a broadcast join,
        cheaper to apply per query than to copy every exchange into a second checkpoint)."""
        from pyspark.sql import functions as F
        from pyspark.sql.window import Window

        # Every record with its text: on disk (held in memory, 4.5M exchanges overflowed
        # a 4 GB heap while being stored). The tables built from it are small.
        self._keep("_records", read_logs(self.spark, logs, source), on_disk=True)
        rows = self._tables["_records"]
        quarantine_columns = [f"quarantine_{n}" for n in QUARANTINE_FIELDS]
        valid = rows.where(F.col("quarantine_code").isNull()).drop(*quarantine_columns)
        # Repeats are found on request ids alone (a hash aggregate), so only the ids
        # cross the network; the full rows meet the (few) repeats broadcast.
        ids = valid.select("request_id", "source_file", "source_line")
        repeated_ids = ids.groupBy("request_id").count().where("count > 1").drop("count")
        order = Window.partitionBy("request_id").orderBy("source_file", "source_line")
        repeats = (ids.join(F.broadcast(repeated_ids), "request_id")
                   .withColumn("_rank", F.row_number().over(order))
                   .withColumn("_first", F.concat_ws(":", F.first("source_file").over(order),
                                                     F.first("source_line").over(order)))
                   .where("_rank > 1").drop("_rank"))
        self._keep("_repeats", repeats)
        repeated = F.broadcast(self._tables["_repeats"])
        exchanges = valid.join(repeated.drop("request_id", "_first"),
                               ["source_file", "source_line"], "left_anti")
        exchanges.createOrReplaceTempView("exchanges")
        self._tables["exchanges"] = exchanges
        spec = [c for c in valid.columns if c not in ("source_file", "source_line")]
        raw = F.to_json(F.struct(*spec))
        duplicates = valid.join(repeated.drop("request_id"), ["source_file", "source_line"]).select(
            "source_file", "source_line",
            F.lit("duplicate_request_id").alias("quarantine_code"),
            F.concat(F.lit("duplicate request_id '"), F.col("request_id"),
                     F.lit("': first stored from "), F.col("_first")).alias("quarantine_reason"),
            raw.alias("quarantine_raw"), F.lit("utf-8").alias("quarantine_raw_encoding"),
            F.length(F.encode(raw, "UTF-8")).cast("long").alias("quarantine_raw_bytes"))
        rejected = rows.where(F.col("quarantine_code").isNotNull()).select(
            "source_file", "source_line", *quarantine_columns)
        self._keep("quarantine", rejected.unionByName(duplicates))

    def materialize(self, name: str, sql: str, params: Params = None) -> None:
        self._keep(name, self._sql(sql, params))

    def rows(self, sql: str, params: Params = None) -> list[tuple[Any, ...]]:
        return self._fetch(sql, params, lambda frame: [tuple(r) for r in frame.collect()])

    def arrow(self, sql: str, params: Params = None) -> pa.Table:
        return self._fetch(sql, params, lambda frame: frame.toArrow())

    def _fetch(self, sql: str, params: Params, how: Callable[[Any], Any]) -> Any:
        frame = self._sql(sql, params)
        try:
            return how(frame)
        except Exception as exc:
            msg = f"Spark query failed: {exc}"
            raise EngineError(msg) from exc

    def register(self, name: str, table: pa.Table) -> None:
        from pyspark.sql.pandas.types import from_arrow_schema

        # An explicit schema: Spark Connect cannot infer one from an empty table.
        self._keep(name, self.spark.createDataFrame(table, schema=from_arrow_schema(table.schema)))

    def compute_signals(self, per_account: int, lexicon: Lexicon,
                        on_rows: Callable[[int], None] | None = None,
                        sketch: SketchParams | None = None) -> int:
        from pyspark.sql.pandas.types import from_arrow_schema

        source = self._sql(SIGNALS_INPUT_SQL, None)
        self._keep("signals", source.mapInArrow(_signals_body(per_account, lexicon, sketch),
                                                from_arrow_schema(SIGNAL_ROW_SCHEMA)))
        if on_rows:
            on_rows(self._tables["exchanges"].count())
        return int(self._tables["signals"].count())

    def exchange_rows(self, picks: list[tuple[str, Any]]) -> list[tuple[Any, ...]]:
        """One join for all picks: each query is a pass over the records on Spark."""
        self.register("exchange_picks", pa.table({
            "request_id": pa.array([p[0] for p in picks], pa.string()),
            "ts": pa.array([p[1] for p in picks], pa.timestamp("us"))}))
        columns = ", ".join(f"e.{c}" for c in ("request_id", *EXCHANGE_LOOKUP_COLUMNS))
        return self.rows(f"SELECT {columns} FROM exchanges e JOIN exchange_picks p "
                         "ON e.ts = p.ts AND e.request_id = p.request_id")

    def quarantined(self) -> int:
        return int(self._tables["quarantine"].count()) if "quarantine" in self._tables else 0

    def aggregate_parts(self, rows: int, bytes_per_row: int) -> int:
        return 1  # Spark shuffles an aggregation over its partitions and spills them

    def memory_lent(self) -> AbstractContextManager[None]:
        return nullcontext()  # executors' memory is not this process's

    def export_quarantine(self, out: Path) -> int:
        """Write the quarantined records beside the findings; return how many."""
        frame = self._tables["quarantine"].orderBy("source_file", "source_line")
        return write_quarantine(frame.toLocalIterator(), out)

    def close(self) -> None:
        for frame in self._tables.values():
            frame.unpersist()
        self._tables.clear()
