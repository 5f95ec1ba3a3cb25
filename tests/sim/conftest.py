from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from distillguard.sim import SimOptions, SimReport, parse_evasion, simulate

TINY = str(Path(__file__).parent / "files" / "tiny.yaml")


@dataclass
class Simulated:
    """A simulated log and a DuckDB connection with views ``labels`` and ``ex`` (exchanges +
    the label's ``actor`` and ``archetype``)."""

    report: SimReport
    out: Path
    con: duckdb.DuckDBPyConnection

    def rows(self, sql: str) -> list[tuple]:
        return self.con.execute(sql).fetchall()

    def value(self, sql: str) -> object:
        return self.con.execute(sql).fetchall()[0][0]


def run(out: Path, corpora: Path, **options: object) -> Simulated:
    report = simulate(SimOptions(out=out, corpora=corpora, **options), show_progress=False)
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    con.execute(f"CREATE VIEW labels AS SELECT * FROM read_json('{out}/labels.jsonl', "
                "columns = {account_id: 'VARCHAR', actor: 'VARCHAR', archetype: 'VARCHAR'})")
    con.execute("CREATE VIEW ex AS SELECT e.*, l.actor, l.archetype "
                f"FROM read_parquet('{out}/exchanges/*.parquet') e JOIN labels l USING (account_id)")
    return Simulated(report, out, con)


@pytest.fixture(scope="session")
def baseline(tmp_path_factory: pytest.TempPathFactory, shared_corpora: Path) -> Simulated:
    """The default scenario at scale 0.01, evasion off."""
    return run(tmp_path_factory.mktemp("baseline"), shared_corpora, scale=0.01, seed=1,
               evasion=frozenset())


@pytest.fixture(scope="session")
def evaded(tmp_path_factory: pytest.TempPathFactory, shared_corpora: Path) -> Simulated:
    """The same with every evasion knob on."""
    return run(tmp_path_factory.mktemp("evaded"), shared_corpora, scale=0.01, seed=1,
               evasion=parse_evasion("all"))
