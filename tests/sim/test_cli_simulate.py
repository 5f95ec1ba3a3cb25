from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from distillguard.cli import app
from tests.sim.conftest import TINY

pytestmark = pytest.mark.slow  # whole simulated scenarios

runner = CliRunner()


def test_simulate_writes_the_log_and_prints_accounts_by_actor(tmp_path: Path,
                                                              shared_corpora: Path) -> None:
    result = runner.invoke(app, ["simulate", "--scenario", TINY, "--scale", "0.002", "--seed",
                                 "1", "--out", str(tmp_path), "--evasion", "timing,infra",
                                 "--corpora", str(shared_corpora)])
    assert result.exit_code == 0, result.output
    assert "evasion infra, timing" in result.output
    for actor in ("chat", "app", "reasoning", "agentic", "hydra"):
        assert actor in result.output
    manifest = orjson.loads((tmp_path / "simulation.json").read_bytes())
    assert manifest["evasion"] == ["infra", "timing"]
    assert sum(r["exchanges"] for r in manifest["by_kind"]) == manifest["exchanges"]
    assert list((tmp_path / "exchanges").glob("part-*.parquet"))


def test_simulate_rejects_a_bad_scale_with_a_message(tmp_path: Path) -> None:
    result = runner.invoke(app, ["simulate", "--scale", "-0.5", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "--scale must be greater than 0" in result.output


def test_demo_simulates_then_ingests_without_quarantine(tmp_path: Path,
                                                        shared_corpora: Path) -> None:
    result = runner.invoke(app, ["demo", "--workdir", str(tmp_path),
                                 "--corpora", str(shared_corpora)])
    assert result.exit_code == 0, result.output
    assert "hydra" in result.output
    assert "0 quarantined" in result.output
    assert (tmp_path / "sim" / "labels.jsonl").is_file()
