"""Gateway config files: validated like a real config, refused in one line with exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from distillguard.cli import app
from distillguard.errors import RuleValidationError
from distillguard.gateway.account_window import SHARES
from distillguard.gateway.config import load_config
from distillguard.signals import TECHNIQUES

BAD_CONFIGS = [
    ("scoring: {batch_maks: 10}\n",
     "The 'scoring.batch_maks' key of gateway config {path} is unknown; did you mean "
     "'batch_max'?"),
    ("rules: [{name: r, action: block, when: {shares_at_least: {templated: 1.5}}}]\n",
     "The 'rules[0].when.shares_at_least.templated' field of gateway config {path} must be a "
     "float in [0, 1]. Got 1.5 instead."),
    ("rules: [{name: r, action: block, when: {min_requests: -5}}]\n",
     "The 'rules[0].when.min_requests' field of gateway config {path} must be an int >= 0. "
     "Got -5 instead."),
    ("scoring: {worker_nice: 25}\n",
     "The 'scoring.worker_nice' field of gateway config {path} must be an int in [0, 19]."),
    ("throttle: {account: {requests_per_minute: 0}}\n",
     "The 'throttle.account.requests_per_minute' field of gateway config {path} must be a "
     "float > 0 or null. Got 0 instead."),
    ("identity: {trusted_proxies: [10.0.0.0/33]}\n",
     "The 'identity.trusted_proxies[0]' field of gateway config {path} must be an IP network"),
    ("mode: [enforce\n", "gateway config {path} is not valid YAML: "),
]


def test_window_shares_follow_the_lexicon() -> None:
    assert SHARES[:len(TECHNIQUES)] == TECHNIQUES


@pytest.mark.parametrize(("text", "message"), BAD_CONFIGS)
def test_a_bad_config_is_refused_in_one_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(text)
    with pytest.raises(RuleValidationError) as caught:
        load_config(path)
    assert message.format(path=path) in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(("text", "message"), [*BAD_CONFIGS, (None, "cannot read gateway config ")])
def test_gateway_with_a_bad_config_exits_2_with_one_line(tmp_path: Path, text: str | None,
                                                         message: str) -> None:
    path = tmp_path / "gateway.yaml"
    if text is not None:
        path.write_text(text)
    result = CliRunner().invoke(app, ["gateway", "--upstream", "http://127.0.0.1:9",
                                      "--config", str(path), "--port", "0"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: ") and message.format(path=path) in lines[0]
