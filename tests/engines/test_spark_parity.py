"""The Spark engine (local[2]) and the embedded engine give the same findings on the same input."""

from __future__ import annotations

from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest

from distillguard.engines.scan_job import ScanJob, run_scan_job
from distillguard.engines.spark_session import SparkOptions
from distillguard.sim import SimOptions, parse_evasion, simulate

pytestmark = pytest.mark.usefixtures("java_runtime")


def _add_bad_records(exchanges: Path) -> int:
    """A JSON Lines file of broken records and one resent request; return how many."""
    first = pq.ParquetFile(sorted(exchanges.glob("*.parquet"))[0]).read_row_group(0)
    resent = first.slice(0, 1).to_pylist()[0]
    lines = [
        orjson.dumps(resent, default=str),
        b'{"request_id": "only-an-id"}',
        b"not json at all",
        b'{"request_id": "r-bad-ts", "ts": 1700000000, "account_id": "a", "model": "m",'
        b' "messages": [{"role": "user", "content": "hi"}]}',
        b"\xff\xfe binary",
    ]
    (exchanges / "zz-extra.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    return len(lines)


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory, shared_corpora: Path) -> tuple[dict, dict, Path]:
    out = tmp_path_factory.mktemp("parity")
    simulate(SimOptions(out=out, scale=0.0015, seed=41, evasion=parse_evasion("all"),
                        corpora=shared_corpora), show_progress=False)
    _add_bad_records(out / "exchanges")
    duck, _ = run_scan_job(ScanJob([out / "exchanges"], None, out / "duckdb.json"))
    spark, result = run_scan_job(ScanJob([out / "exchanges"], None, out / "spark.json",
                                         engine="spark", spark=SparkOptions("local[2]")))
    assert {"start", "load", "signals"} <= set(result.timings)
    return duck, spark, out


@pytest.mark.slow
def test_same_accounts_verdicts_and_scores(both: tuple[dict, dict, Path]) -> None:
    duck, spark, _ = both
    assert duck["accounts"], "the scenario must hold a campaign for the comparison to mean much"
    by_account = {a["account_id"]: a for a in spark["accounts"]}
    assert set(by_account) == {a["account_id"] for a in duck["accounts"]}
    for account in duck["accounts"]:
        other = by_account[account["account_id"]]
        assert other["verdict"] == account["verdict"]
        assert other["campaign_id"] == account["campaign_id"]
        assert other["score"] == pytest.approx(account["score"], abs=1e-6)
        assert other["signals"] == pytest.approx(account["signals"], abs=1e-6)
        assert other["reasons"] == account["reasons"]


@pytest.mark.slow
def test_same_campaigns_and_profiles(both: tuple[dict, dict, Path]) -> None:
    duck, spark, _ = both
    assert [c["accounts"] for c in spark["campaigns"]] == [c["accounts"] for c in duck["campaigns"]]
    for mine, theirs in zip(duck["campaigns"], spark["campaigns"], strict=True):
        assert theirs == mine


@pytest.mark.slow
def test_same_input_summary_and_quarantine(both: tuple[dict, dict, Path]) -> None:
    duck, spark, out = both
    assert spark["input"] == duck["input"]
    assert duck["input"]["quarantined"] == 5

    def rejected(path: Path) -> set[tuple[str, int, str]]:
        rows = [orjson.loads(line) for line in path.read_bytes().splitlines()]
        return {(r["source_file"], r["source_line"], r["code"]) for r in rows}

    duck_rows = rejected(out / "duckdb.json.quarantine.jsonl")
    assert rejected(out / "spark.json.quarantine.jsonl") == duck_rows
    assert {code for *_, code in duck_rows} == {"duplicate_request_id", "missing_field",
                                                 "invalid_json", "bad_timestamp", "not_utf8"}
