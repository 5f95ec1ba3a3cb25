"""Stream exchanges out of DuckDB, sample them, and store their content signals.

The per-exchange work (``signals.exchange_signals``) runs in two threads:
pyarrow's compute kernels release the GIL, so the two cores share it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from distillguard.engines.duckdb_errors import map_duckdb_errors
from distillguard.signals.exchange_signals import exchange_signals
from distillguard.signals.lexicon import Lexicon
from distillguard.signals.registry import SIGNAL_SCHEMA
from distillguard.signals.sampling import sample_mask

__all__ = ["SIGNAL_INPUT_COLUMNS", "SIGNAL_ROW_SCHEMA", "compute_signals_table"]

SIGNAL_INPUT_COLUMNS = ("request_id", "account_id", "ts", "model", "org_id",
                        "payment_fingerprint", "messages", "system", "tools", "has_image")
# One row of table ``signals``: which exchange, whose, when, then every signal.
SIGNAL_ROW_SCHEMA = pa.schema([
    ("row_id", pa.int64()), ("request_id", pa.string()), ("account_id", pa.string()),
    ("owner", pa.string()), ("ts", pa.timestamp("us")), ("model", pa.string()),
    *SIGNAL_SCHEMA,
])
_BATCH_ROWS = 8192


def _signal_rows(batch: pa.RecordBatch, rates: dict[str, float], lexicon: Lexicon,
                 first_row: int) -> pa.RecordBatch | None:
    mask = sample_mask(batch.column("request_id"), batch.column("account_id"), rates)
    if not mask.any():
        return None
    sampled = batch.filter(pa.array(mask))
    signals = exchange_signals(sampled, lexicon=lexicon)
    row_id = pa.array(first_row + np.flatnonzero(mask), pa.int64())
    owner = pc.coalesce(sampled.column("org_id"), sampled.column("payment_fingerprint"),
                        sampled.column("account_id"))
    columns = [row_id, sampled.column("request_id"), sampled.column("account_id"), owner,
               sampled.column("ts").cast(pa.timestamp("us")), sampled.column("model"),
               *signals.columns]
    return pa.RecordBatch.from_arrays(columns, schema=SIGNAL_ROW_SCHEMA)


def _batches(reader: pa.RecordBatchReader) -> Iterator[tuple[pa.RecordBatch, int]]:
    first = 0
    for batch in reader:
        yield batch, first
        first += batch.num_rows


def compute_signals_table(con: duckdb.DuckDBPyConnection, rates: dict[str, float],
                          lexicon: Lexicon, *, on_rows: Callable[[int], None] | None = None,
                          threads: int = 2) -> int:
    """Create table ``signals`` from the sampled rows of view ``exchanges``; return its size."""
    columns = ", ".join(SIGNAL_INPUT_COLUMNS)
    written = 0
    created = False
    reader_con = con.cursor()
    with map_duckdb_errors("cannot read exchanges for signals"):
        reader = reader_con.sql(f"SELECT {columns} FROM exchanges").to_arrow_reader(_BATCH_ROWS)
    with ThreadPoolExecutor(max_workers=threads) as pool:
        pending = []
        for batch, first in _batches(reader):
            pending.append(pool.submit(_signal_rows, batch, rates, lexicon, first))
            if len(pending) >= threads * 2:
                written, created = _store(con, pending.pop(0).result(), written, created)
            if on_rows:
                on_rows(batch.num_rows)
        for future in pending:
            written, created = _store(con, future.result(), written, created)
    if not created:
        empty = SIGNAL_ROW_SCHEMA.empty_table()  # noqa: F841 - read by DuckDB
        with map_duckdb_errors("cannot create signals"):
            con.execute("CREATE OR REPLACE TABLE signals AS SELECT * FROM empty")
    return written


def _store(con: duckdb.DuckDBPyConnection, rows: pa.RecordBatch | None, written: int,
           created: bool) -> tuple[int, bool]:
    if rows is None:
        return written, created
    incoming = pa.Table.from_batches([rows])  # noqa: F841 - read by DuckDB
    with map_duckdb_errors("cannot store signals"):
        if created:
            con.execute("INSERT INTO signals SELECT * FROM incoming")
        else:
            con.execute("CREATE OR REPLACE TABLE signals AS SELECT * FROM incoming")
    return written + rows.num_rows, True
