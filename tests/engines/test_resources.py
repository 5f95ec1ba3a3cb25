"""The engine's memory, threads and spill folder: set by configuration, with clear failures."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from distillguard.cli import app
from distillguard.engines import EngineResources, ExchangeStore, map_duckdb_errors
from distillguard.engines.duckdb_errors import resource_advice
from distillguard.engines.resources import parse_memory
from distillguard.engines.scan_job import ScanJob, run_scan_job
from distillguard.errors import EngineError, InputError, ResourceError
from distillguard.sim import SimOptions, parse_evasion, simulate
from tests.engines.test_scan import findings_digest


@pytest.mark.parametrize("text", ["", "lots", "1", "GB", "-1GB", "1 XB", "10MB"])
def test_unusable_memory_sizes_are_refused(text: str) -> None:
    with pytest.raises(InputError, match="memory size"):
        EngineResources(text)


def test_memory_sizes_in_both_units() -> None:
    assert parse_memory("2GB") == 2 * 10**9
    assert parse_memory("1.5GiB") == 3 * 2**29
    assert parse_memory(" 768 mb ") == 768 * 10**6


def test_threads_below_one_are_refused() -> None:
    with pytest.raises(InputError, match="threads"):
        EngineResources(threads=0)


def test_store_uses_the_configured_memory_threads_and_spill_folder(tmp_path: Path) -> None:
    spill = tmp_path / "spill"
    with ExchangeStore(tmp_path / "s.duckdb",
                       resources=EngineResources("300MB", 1, spill)) as store:
        limit, threads, temp = store.con.execute(
            "SELECT current_setting('memory_limit'), current_setting('threads'), "
            "current_setting('temp_directory')").fetchone()
    assert limit.replace(" ", "") in ("286.1MiB", "300.0MB")
    assert threads == 1
    assert Path(temp) == spill


def test_spill_folder_defaults_to_beside_the_store(tmp_path: Path) -> None:
    with ExchangeStore(tmp_path / "s.duckdb") as store:
        temp = store.con.execute("SELECT current_setting('temp_directory')").fetchone()[0]
    assert Path(temp) == tmp_path / "s.duckdb.tmp"


def test_running_out_of_memory_says_what_to_change() -> None:
    con = duckdb.connect(config={"memory_limit": "64MB", "threads": 1})
    # list() cannot spill: it must fail, and the failure must name the options to change.
    with pytest.raises(ResourceError) as caught, map_duckdb_errors("cannot build big"):
        con.execute("SELECT list(i::VARCHAR || 'padding padding padding') "
                    "FROM range(20000000) t(i)").fetchall()
    message = str(caught.value)
    assert message.startswith("cannot build big: the engine needed more than its memory limit")
    assert "--memory" in message and "--threads" in message and "--temp-dir" in message


def test_a_full_spill_folder_points_at_temp_dir() -> None:
    exc = duckdb.OutOfMemoryException(
        "Out of Memory Error: failed to offload data block of size 256.0 KiB (1.0 GiB/1.0 GiB "
        "used). This limit was set by the 'max_temp_directory_size' setting.")
    advice = resource_advice(exc)
    assert advice is not None and "--temp-dir" in advice and "temporary folder" in advice


def test_other_engine_errors_stay_engine_errors() -> None:
    con = duckdb.connect()
    with pytest.raises(EngineError) as caught, map_duckdb_errors("query failed"):
        con.execute("SELECT * FROM no_such_table")
    assert not isinstance(caught.value, ResourceError)


def test_cli_refuses_a_bad_memory_option(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["scan", str(tmp_path), "--memory", "plenty",
                                      "--out", str(tmp_path / "f.json")])
    assert result.exit_code == 2
    assert "memory size 'plenty'" in result.output


@pytest.mark.slow
def test_a_small_memory_limit_gives_the_same_findings(tmp_path: Path,
                                                       shared_corpora: Path) -> None:
    """With one thread and 100MB the engine spills instead of failing, and decides the same."""
    simulate(SimOptions(out=tmp_path, scale=0.002, seed=3, split="test",
                        evasion=parse_evasion("all"), corpora=shared_corpora),
             show_progress=False)
    roomy, _ = run_scan_job(ScanJob([tmp_path / "exchanges"], None, tmp_path / "a.json"))
    tables: list[tuple[str, float]] = []
    totals: list[int] = []
    tight, _ = run_scan_job(ScanJob([tmp_path / "exchanges"], None, tmp_path / "b.json",
                                    resources=EngineResources("100MB", 1)),
                            on_query_progress=lambda name, pct: tables.append((name, pct)),
                            on_signal_total=totals.append)
    assert findings_digest(tight) == findings_digest(roomy)
    assert roomy["input"]["exchanges"] > 0
    # progress: every table built reports its end, and the signals stage knows its total
    assert {"account_behavior", "unit_stats", "account_template"} <= {n for n, _ in tables}
    assert ("unit_stats", 100.0) in tables
    assert all(0 <= pct <= 100 for _, pct in tables)
    assert totals == [roomy["input"]["exchanges"]]


def test_memory_lent_while_python_works_then_given_back() -> None:
    from distillguard.engines.sql_engine import LENT_MEMORY_FLOOR, DuckDBEngine

    engine = DuckDBEngine(duckdb.connect(config={"memory_limit": "500MB"}), memory="500MB")
    setting = "SELECT value FROM duckdb_settings() WHERE name = 'memory_limit'"
    before = engine.rows(setting)[0][0]
    for _ in range(3):
        with engine.memory_lent():
            assert parse_memory(engine.rows(setting)[0][0]) <= LENT_MEMORY_FLOOR
        assert engine.rows(setting)[0][0] == before
    with pytest.raises(RuntimeError), engine.memory_lent():
        raise RuntimeError
    assert engine.rows(setting)[0][0] == before


def test_memory_lent_when_duckdb_cannot_free_its_pages_does_not_fail() -> None:
    """An in-memory store with no temp directory cannot evict its tables' pages: the
    limit goes down to what DuckDB holds instead of the floor, and nothing fails."""
    from distillguard.engines.sql_engine import LENT_MEMORY_FLOOR, DuckDBEngine

    con = duckdb.connect(config={"memory_limit": "2GB", "temp_directory": ""})
    con.execute("CREATE TABLE held AS SELECT range AS a, range * 2 AS b FROM range(20000000)")
    engine = DuckDBEngine(con, memory="2GB")
    setting = "SELECT value FROM duckdb_settings() WHERE name = 'memory_limit'"
    before = engine.rows(setting)[0][0]
    with engine.memory_lent():
        lent = parse_memory(engine.rows(setting)[0][0])
        assert LENT_MEMORY_FLOOR < lent < parse_memory("2GB")
        assert engine.rows("SELECT count(*) FROM held") == [(20_000_000,)]
    assert engine.rows(setting)[0][0] == before


class _FailingOnce:
    """A DuckDB connection whose queries containing ``marker`` run out of memory the first
    ``times`` times; every statement is recorded."""

    def __init__(self, con: duckdb.DuckDBPyConnection, marker: str, times: int = 1) -> None:
        self.con, self.marker, self.left, self.statements = con, marker, times, []

    def execute(self, sql: str, params: object = None) -> duckdb.DuckDBPyConnection:
        self.statements.append(sql)
        if self.marker in sql and self.left > 0:
            self.left -= 1
            raise duckdb.OutOfMemoryException(
                "Out of Memory Error: could not allocate block of size 256.0 KiB "
                "(476.8 MiB/476.8 MiB used)")
        return self.con.execute(sql, params or {})


def test_a_query_out_of_memory_runs_again_once_after_pages_are_evicted() -> None:
    from distillguard.engines.sql_engine import LENT_MEMORY_FLOOR, DuckDBEngine

    con = _FailingOnce(duckdb.connect(config={"memory_limit": "500MB"}), "range(3)")
    engine = DuckDBEngine(con, memory="500MB")  # type: ignore[arg-type]
    assert engine.rows("SELECT sum(i) FROM range(3) t(i)") == [(3,)]
    lowered = con.statements.index(f"SET memory_limit = '{LENT_MEMORY_FLOOR}B'")
    assert con.statements[lowered + 1:] == ["SET memory_limit = '500MB'",
                                            "SELECT sum(i) FROM range(3) t(i)"]

    twice = DuckDBEngine(_FailingOnce(duckdb.connect(), "range(3)", times=2),  # type: ignore[arg-type]
                         memory="500MB")
    with pytest.raises(ResourceError, match="--memory"):
        twice.rows("SELECT sum(i) FROM range(3) t(i)")
    unlent = _FailingOnce(duckdb.connect(), "range(3)")
    with pytest.raises(ResourceError, match="--memory"):
        DuckDBEngine(unlent, memory=None).rows("SELECT sum(i) FROM range(3) t(i)")  # type: ignore[arg-type]
    assert not any(s.startswith("SET memory_limit") for s in unlent.statements)
