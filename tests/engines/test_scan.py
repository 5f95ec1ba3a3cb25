"""The whole scan on simulated traffic the detector was not tuned on (held-out pipelines)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from distillguard.cli import app
from distillguard.engines.scan_job import ScanJob, run_scan_job
from distillguard.evaluate import evaluate_findings, read_labels
from distillguard.sim import SimOptions, parse_evasion, simulate


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory, shared_corpora: Path) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("scan")
    simulate(SimOptions(out=out, scale=0.005, seed=11, split="test",
                        evasion=parse_evasion("all"), corpora=shared_corpora), show_progress=False)
    findings, _ = run_scan_job(ScanJob([out / "exchanges"], None, out / "findings.json",
                                       report=out / "report.md"))
    return out, findings


DIGEST = Path(__file__).parent / "files" / "findings_digest.json"
# Fields findings gained after the digest was taken (the rule ids; the input's field
# coverage and the signals not computed); the digest leaves them out.
LATER_FIELDS = {"rules", "reason_rules"}
LATER_INPUT_FIELDS = {"fields_missing", "fields_partial", "signals_not_computed"}


def findings_digest(findings: dict[str, Any]) -> dict[str, Any]:
    """What the scan decided, compactly: each account's verdict, campaign and score, each
    campaign's score, size and techniques, and a hash of everything else but the time."""
    kept = {**findings, "generated_at": None,
            "input": {k: v for k, v in findings["input"].items() if k not in LATER_INPUT_FIELDS},
            "accounts": [{k: v for k, v in a.items() if k not in LATER_FIELDS}
                         for a in findings["accounts"]],
            "campaigns": [{k: v for k, v in c.items() if k not in LATER_FIELDS}
                          for c in findings["campaigns"]]}
    return {
        "sha256": hashlib.sha256(orjson.dumps(kept, option=orjson.OPT_SORT_KEYS)).hexdigest(),
        "accounts": [[a["account_id"], a["verdict"], a["campaign_id"], a["score"]]
                     for a in findings["accounts"]],
        "campaigns": [[c["campaign_id"], c["score"], len(c["accounts"]), c["exchanges"],
                       c["techniques"]] for c in findings["campaigns"]],
    }


@pytest.mark.slow
def test_findings_match_the_recorded_digest(scanned: tuple[Path, dict]) -> None:
    """The same traffic gives the same findings as when the digest was recorded (taken
    at d1650d1, before the scan's stages moved out of ``engines/scan.py``). A change
    that means to alter findings records a new digest: run this test with
    DISTILLGUARD_WRITE_DIGEST=1 and say why in the commit."""
    digest = findings_digest(scanned[1])
    if os.environ.get("DISTILLGUARD_WRITE_DIGEST"):
        DIGEST.write_bytes(orjson.dumps(digest, option=orjson.OPT_INDENT_2) + b"\n")
    recorded = orjson.loads(DIGEST.read_bytes())
    assert digest["campaigns"] == recorded["campaigns"]
    assert digest["accounts"] == recorded["accounts"]
    assert digest["sha256"] == recorded["sha256"], "reasons, signals or profiles changed"


@pytest.mark.slow
def test_findings_follow_format_v1(scanned: tuple[Path, dict]) -> None:
    out, findings = scanned
    assert findings["format"] == "distillguard-findings/1"
    assert findings["input"]["exchanges"] > 0 and findings["input"]["to"].endswith("Z")
    for account in findings["accounts"]:
        assert account["verdict"] in {"extraction", "review"}
        assert account["reasons"] and all(isinstance(r, str) for r in account["reasons"])
    campaign = findings["campaigns"][0]
    assert set(campaign["indicators"]) == {"ips", "asns", "payment_fingerprints",
                                           "client_fingerprints", "templates"}
    assert campaign["pivots"] and 0 <= campaign["pivots"][0]["share_within_24h"] <= 1
    assert orjson.loads((out / "findings.json").read_bytes()) == findings
    assert "## Campaign C1" in (out / "report.md").read_text()


@pytest.mark.slow
def test_no_legitimate_account_is_judged_extraction(scanned: tuple[Path, dict]) -> None:
    out, findings = scanned
    labels, _ = read_labels(out / "labels.jsonl")
    metrics = evaluate_findings(findings, labels)
    assert metrics["extraction"]["false_positives"] == 0
    assert metrics["extraction"]["recall"] >= 0.9
    assert metrics["extraction_or_review"]["recall"] >= 0.95


@pytest.mark.slow
def test_cli_scan_and_eval(scanned: tuple[Path, dict], tmp_path: Path) -> None:
    out, _ = scanned
    runner = CliRunner()
    result = runner.invoke(app, ["scan", str(out / "exchanges"), "--out",
                                 str(tmp_path / "f.json")])
    assert result.exit_code == 0, result.output
    assert "campaign(s)" in result.output
    result = runner.invoke(app, ["eval", "--findings", str(tmp_path / "f.json"), "--labels",
                                 str(out / "labels.jsonl"), "--json", str(tmp_path / "m.json")])
    assert result.exit_code == 0, result.output
    assert orjson.loads((tmp_path / "m.json").read_bytes())["extraction"]["precision"] == 1.0


def test_scan_without_input_fails_clearly(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["scan", "--out", str(tmp_path / "f.json")])
    assert result.exit_code == 2
    assert "give exchange logs to scan" in result.output


def test_scan_of_an_empty_directory_writes_empty_findings(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    findings, _ = run_scan_job(ScanJob([tmp_path / "logs"], None, tmp_path / "f.json"))
    assert findings["input"]["exchanges"] == 0
    assert findings["accounts"] == [] and findings["campaigns"] == []


@pytest.mark.slow
def test_traffic_without_campaigns_lists_nobody(tmp_path: Path, shared_corpora: Path) -> None:
    simulate(SimOptions(out=tmp_path, scenario="quiet", scale=0.005, seed=12,
                        corpora=shared_corpora),
             show_progress=False)
    findings, _ = run_scan_job(ScanJob([tmp_path / "exchanges"], None, tmp_path / "f.json"))
    assert findings["input"]["exchanges"] > 10_000
    assert findings["accounts"] == [] and findings["campaigns"] == []


def test_bad_records_are_quarantined_beside_the_findings(tmp_path: Path) -> None:
    log = tmp_path / "bad.jsonl"
    log.write_bytes(b'{"request_id": "x"}\nnot json\n')
    findings, _ = run_scan_job(ScanJob([log], None, tmp_path / "f.json"))
    assert findings["input"]["quarantined"] == 2
    assert len((tmp_path / "f.json.quarantine.jsonl").read_text().splitlines()) == 2
