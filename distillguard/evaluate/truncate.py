"""The first exchanges of a log by time: traffic as a scan would have seen it earlier."""

from __future__ import annotations

from pathlib import Path

import duckdb

__all__ = ["first_exchanges"]


def first_exchanges(parquet_dir: Path, n: int, out: Path) -> int:
    """Write the first ``n`` exchanges (by ``ts``, then ``request_id``) of the Parquet parts
    in ``parquet_dir`` to the Parquet file ``out`` (all of them for ``n`` = 0); return how
    many were written."""
    limit = f"LIMIT {int(n)}" if n else ""
    con = duckdb.connect()
    try:
        con.execute("SET enable_progress_bar = false")
        con.execute(f"COPY (SELECT * FROM read_parquet('{parquet_dir}/*.parquet') "
                    f"ORDER BY ts, request_id {limit}) TO '{out}' (FORMAT parquet)")
        return int(con.execute(f"SELECT count(*) FROM read_parquet('{out}')").fetchall()[0][0])
    finally:
        con.close()
