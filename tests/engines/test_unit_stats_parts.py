"""``unit_stats`` built in parts (a store whose unit uses outgrow the engine's memory)
holds exactly the rows built at once."""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from distillguard.engines.scan import build_unit_stats
from distillguard.engines.sql_engine import DuckDBEngine, Params
from distillguard.errors import ResourceError
from distillguard.verdict.policy import load_policy


class _EngineInParts(DuckDBEngine):
    def __init__(self, con: duckdb.DuckDBPyConnection, parts: int) -> None:
        super().__init__(con)
        self.parts = parts

    def aggregate_parts(self, rows: int, bytes_per_row: int) -> int:
        return self.parts


class _EngineShortOfMemory(_EngineInParts):
    """Runs out of memory on any part of the unit statistics cut into fewer than
    ``enough`` parts (its estimate says ``parts``)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, parts: int, enough: int) -> None:
        super().__init__(con, parts)
        self.enough = enough
        self.failed: list[tuple[int, int]] = []

    def materialize(self, name: str, sql: str, params: Params = None) -> None:
        if params and "parts" in params and params["parts"] < self.enough:
            self.failed.append((params["parts"], params["part"]))
            msg = "cannot build unit_stats: the engine needed more than its memory limit"
            raise ResourceError(msg)
        super().materialize(name, sql, params)


def _signals(seed: int = 0, rows: int = 3000) -> pa.Table:
    """Sampled requests over 40 shared units (some signed negative, as hashes are) and
    each request's own unit, from 60 accounts of 20 owners."""
    rng = np.random.default_rng(seed)
    shared = rng.integers(-2**62, 2**62, size=40)
    units = [[int(u) for u in rng.choice(shared, size=rng.integers(1, 6), replace=False)]
             + [int(rng.integers(-2**62, 2**62))] for _ in range(rows)]
    accounts = rng.integers(0, 60, size=rows)
    return pa.table({
        "row_id": pa.array(rng.integers(-2**62, 2**62, size=rows), pa.int64()),
        "account_id": [f"acct-{a}" for a in accounts],
        "owner": [f"owner-{a % 20}" for a in accounts],
        "text_hash": pa.array(rng.integers(0, 400, size=rows), pa.int64()),
        "prior_turns": pa.array(rng.integers(0, 2, size=rows), pa.int32()),
        "units": pa.array(units, pa.list_(pa.int64()))})


def _unit_stats_rows(parts: int, engine: DuckDBEngine | None = None
                     ) -> list[tuple[object, ...]]:
    con = duckdb.connect()
    engine = engine or _EngineInParts(con, parts)
    con = engine.con
    engine.register("signals", _signals())
    build_unit_stats(engine, load_policy())
    return con.execute("SELECT * FROM unit_stats ORDER BY unit").fetchall()


def test_unit_stats_in_parts_equals_unit_stats_at_once() -> None:
    at_once = _unit_stats_rows(1)
    assert len(at_once) > 10  # shared units qualify; each request's own unit does not
    for parts in (2, 3, 7):
        assert _unit_stats_rows(parts) == at_once


def test_parts_follow_the_engine_memory_limit() -> None:
    engine = DuckDBEngine(duckdb.connect(config={"memory_limit": "100MB"}))
    limit = 100 * 10**6
    assert engine.aggregate_parts(0, 12) == 1
    assert engine.aggregate_parts(1000, 12) == 1
    parts = engine.aggregate_parts(50_000_000, 12)  # 600 MB of hash tables
    assert parts >= 6
    assert 50_000_000 * 12 / parts <= limit * 1.05  # DuckDB rounds the limit to MiB


def test_a_part_that_runs_out_of_memory_is_split_until_it_fits() -> None:
    at_once = _unit_stats_rows(1)
    for estimate, enough in ((1, 4), (3, 6), (2, 16)):
        engine = _EngineShortOfMemory(duckdb.connect(), estimate, enough)
        assert _unit_stats_rows(estimate, engine) == at_once
        assert engine.failed  # it did run short, and got there by splitting


def test_a_shortage_no_split_cures_is_said() -> None:
    engine = _EngineShortOfMemory(duckdb.connect(), 1, 10**6)
    with pytest.raises(ResourceError, match="memory limit"):
        _unit_stats_rows(1, engine)
