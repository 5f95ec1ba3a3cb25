"""What ``simulate`` writes: readable exchanges, complete labels, releases, determinism."""

from __future__ import annotations

import hashlib
from pathlib import Path

import orjson
import pytest

from distillguard.logs import parse_timestamp_ms, read_exchanges
from distillguard.sim import SimOptions, simulate
from tests.sim.conftest import TINY, Simulated

pytestmark = pytest.mark.slow  # whole simulated scenarios


def _digest(folder: Path) -> dict[str, str]:
    files = [*sorted(folder.glob("exchanges*/*")),
             *(folder / name for name in ("labels.jsonl", "releases.json", "simulation.json"))]
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def test_exchanges_read_back_with_no_quarantined_row(baseline: Simulated) -> None:
    rows = quarantined = 0
    for chunk in read_exchanges([baseline.out / "exchanges"]):
        rows += chunk.batch.num_rows
        quarantined += len(chunk.quarantined)
    assert quarantined == 0
    assert rows == baseline.report.exchanges > 100_000


def test_labels_name_every_account_in_the_exchanges_once(baseline: Simulated) -> None:
    lines = [orjson.loads(line) for line in (baseline.out / "labels.jsonl").read_bytes().splitlines()]
    assert all(set(line) == {"account_id", "actor", "archetype"} for line in lines)
    assert all(line["archetype"] == line["actor"] for line in lines if line["actor"])
    assert {line["archetype"] for line in lines if not line["actor"]} == {
        "chat", "app", "eval", "edu", "corp", "judge", "resale"}
    labelled = [line["account_id"] for line in lines]
    assert len(labelled) == len(set(labelled))
    seen = {r[0] for r in baseline.rows(
        f"SELECT DISTINCT account_id FROM read_parquet('{baseline.out}/exchanges/*.parquet')")}
    assert seen == set(labelled)
    actors = {line["actor"] for line in lines}
    assert actors == {None, "reasoning", "agentic", "hydra", "datagen", "rewardlab"}


def test_releases_put_the_new_model_inside_the_window(baseline: Simulated) -> None:
    releases = orjson.loads((baseline.out / "releases.json").read_bytes())
    assert {r["model"] for r in releases} == {"model-s1", "model-b1", "model-b2"}
    first, last = baseline.rows("SELECT epoch_ms(min(ts)), epoch_ms(max(ts)) FROM ex")[0]
    new = next(r for r in releases if r["model"] == "model-b2")["released_at"]
    assert first < parse_timestamp_ms(new) < last
    assert baseline.value("SELECT count(*) FROM ex WHERE model = 'model-b2' "
                          "AND ts < TIMESTAMPTZ '2026-03-02 16:00:00+00'") == 0


def test_rows_are_in_time_order_within_each_part(baseline: Simulated) -> None:
    out_of_order = baseline.value(f"""
        SELECT count(*) FROM (
          SELECT ts < lag(ts) OVER (PARTITION BY filename ORDER BY file_row_number) AS back
          FROM read_parquet('{baseline.out}/exchanges/*.parquet', filename = true,
                            file_row_number = true))
        WHERE back""")
    total = baseline.report.exchanges
    assert out_of_order / total < 0.01  # only where a conversation runs past its slice


def test_same_seed_writes_the_same_bytes_whatever_the_workers(tmp_path: Path,
                                                              shared_corpora: Path) -> None:
    runs = []
    for name, workers in (("one", 1), ("two", 2)):
        simulate(SimOptions(out=tmp_path / name, scenario=TINY, scale=0.002, seed=7,
                            workers=workers, corpora=shared_corpora), show_progress=False)
        runs.append(_digest(tmp_path / name))
    assert runs[0] == runs[1]
    simulate(SimOptions(out=tmp_path / "other", scenario=TINY, scale=0.002, seed=8, workers=2,
                        corpora=shared_corpora), show_progress=False)
    other = _digest(tmp_path / "other")
    assert other["exchanges/part-00000.parquet"] != runs[0]["exchanges/part-00000.parquet"]


@pytest.mark.parametrize("fmt", ["jsonl", "both"])
def test_jsonl_output_reads_back_like_parquet(tmp_path: Path, shared_corpora: Path,
                                              fmt: str) -> None:
    report = simulate(SimOptions(out=tmp_path, scenario=TINY, scale=0.001, seed=3, fmt=fmt,
                                 corpora=shared_corpora), show_progress=False)
    folders = [tmp_path / "exchanges"] + ([tmp_path / "exchanges-jsonl"] if fmt == "both" else [])
    for folder in folders:
        chunks = list(read_exchanges([folder]))
        assert sum(len(c.quarantined) for c in chunks) == 0
        assert sum(c.batch.num_rows for c in chunks) == report.exchanges
    suffixes = {p.name.split(".", 1)[1] for p in (tmp_path / "exchanges").iterdir()}
    assert suffixes == ({"jsonl.zst"} if fmt == "jsonl" else {"parquet"})
