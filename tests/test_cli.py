from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from typer.main import get_command
from typer.testing import CliRunner

from distillguard.cli import app
from tests.conftest import make_record, write_jsonl

runner = CliRunner()
COMMANDS = sorted(get_command(app).commands)  # type: ignore[attr-defined]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_subcommand_has_help(command: str) -> None:
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_ingest_prints_summary_and_writes_json(tmp_path: Path) -> None:
    log = write_jsonl(tmp_path / "a.jsonl", [make_record(i) for i in range(5)] + [b"nope\n"])
    db = tmp_path / "s.duckdb"
    result = runner.invoke(app, ["ingest", str(log), "--db", str(db),
                                 "--json", str(tmp_path / "sum.json")])
    assert result.exit_code == 0, result.output
    assert "5 exchanges added" in result.output
    summary = orjson.loads((tmp_path / "sum.json").read_bytes())
    assert summary["exchanges"] == 5 and summary["quarantined"] == 1
    assert summary["quarantine_reasons"][0]["code"] == "invalid_json"
    assert Path(summary["quarantine_file"]).is_file()


def test_ingest_json_to_stdout(tmp_path: Path) -> None:
    log = write_jsonl(tmp_path / "a.jsonl", [make_record(1)])
    result = runner.invoke(app, ["ingest", str(log), "--db", str(tmp_path / "s.duckdb"),
                                 "--json", "-"])
    assert result.exit_code == 0
    assert orjson.loads(result.stdout)["run"]["inserted"] == 1


def test_ingest_of_missing_path_fails_clearly(tmp_path: Path) -> None:
    result = runner.invoke(app, ["ingest", str(tmp_path / "missing"), "--db",
                                 str(tmp_path / "s.duckdb")])
    assert result.exit_code == 2
    assert "no such file or directory" in result.output


def test_ingest_of_empty_directory_warns_and_succeeds(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    result = runner.invoke(app, ["ingest", str(tmp_path / "logs"), "--db",
                                 str(tmp_path / "s.duckdb")])
    assert result.exit_code == 0
    assert "no exchange-log files found" in result.output


def test_eval_prints_and_writes_campaign_purity_and_largest_campaign_share(
        tmp_path: Path) -> None:
    findings = {"accounts": [
        {"account_id": "a1", "verdict": "extraction", "campaign_id": "C1"},
        {"account_id": "b1", "verdict": "extraction", "campaign_id": "C1"},
        {"account_id": "b2", "verdict": "review", "campaign_id": "C1"}], "campaigns": []}
    (tmp_path / "f.json").write_bytes(orjson.dumps(findings))
    (tmp_path / "l.jsonl").write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in (
        {"account_id": "a1", "actor": "a", "archetype": "a"},
        {"account_id": "a2", "actor": "a", "archetype": "a"},
        {"account_id": "b1", "actor": "b", "archetype": "b"},
        {"account_id": "b2", "actor": "b", "archetype": "b"},
        {"account_id": "l1", "actor": None, "archetype": "chat"})))
    result = runner.invoke(app, ["eval", "--findings", str(tmp_path / "f.json"), "--labels",
                                 str(tmp_path / "l.jsonl"), "--json", str(tmp_path / "m.json")])
    assert result.exit_code == 0, result.output
    assert "campaign purity (accounts-weighted share of each campaign's majority operator): " \
           "0.6667" in " ".join(result.output.split())
    metrics = orjson.loads((tmp_path / "m.json").read_bytes())
    assert metrics["campaign_purity"]["purity"] == round(2 / 3, 6)
    assert metrics["actors"]["a"]["largest_campaign_share"] == 0.5
    assert metrics["actors"]["b"]["largest_campaign_share"] == 1.0


def test_scan_with_a_store_loads_no_dashboard_code(tmp_path: Path) -> None:
    """Decisions are read from the store the scan opens: no web stack is imported."""
    (tmp_path / "logs").mkdir()
    args = ["scan", str(tmp_path / "logs"), "--db", str(tmp_path / "s.duckdb"),
            "--out", str(tmp_path / "f.json")]
    code = ("import sys\nfrom typer.testing import CliRunner\nfrom distillguard.cli import app\n"
            f"r = CliRunner().invoke(app, {args!r})\nassert r.exit_code == 0, r.output\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('uvicorn', 'starlette', 'jinja2') or m.startswith('distillguard.dashboard')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
