"""Policy files: validated like a real config, every value a rule with an id."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from distillguard.cli import app
from distillguard.errors import RuleValidationError
from distillguard.linkage import AttributionParams, GraphParams
from distillguard.signals.near_duplicates import SketchParams
from distillguard.validation import Section
from distillguard.verdict.policy import POLICY_KEYS, SCHEMA, Policy, load_policy

BAD_POLICIES = [
    ("campaign: {min_owner: 3}\n",
     "The 'campaign.min_owner' key of policy {path} is unknown; did you mean 'min_owners'?"),
    ("campain: {min_owners: 3}\n",
     "The 'campain' key of policy {path} is unknown; did you mean 'campaign'?"),
    ("verdict: {technique_min_share: 1.5}\n",
     "The 'verdict.technique_min_share' field of policy {path} must be a float in [0, 1]. "
     "Got 1.5 instead."),
    ("templates: {min_owners: -2}\n",
     "The 'templates.min_owners' field of policy {path} must be an int >= 1. Got -2 instead."),
    ("sampling: {per_account: lots}\n",
     "The 'sampling.per_account' field of policy {path} must be an int >= 1. Got 'lots' instead."),
    ("graph: {shared_value_max_group: {main_ipp: 5}}\n",
     "The 'graph.shared_value_max_group.main_ipp' key of policy {path} is unknown; "
     "did you mean 'main_ip'?"),
    ("campaign: [1, 2\n", "policy {path} is not valid YAML: "),
    ("- campaign\n", "policy {path} must be a YAML mapping of sections. Got list instead."),
]


def _all_keys(section: Section, prefix: str = "") -> set[str]:
    keys = set()
    for name, inner in section.fields.items():
        if isinstance(inner, Section):
            keys |= _all_keys(inner, f"{prefix}{name}.")
        else:
            keys.add(f"{prefix}{name}")
    return keys


def test_the_packaged_policy_loads_and_every_key_is_a_policy_value() -> None:
    policy = load_policy()
    assert isinstance(policy, Policy)
    covered = set(POLICY_KEYS.values()) | {f"graph.{f.name}" for f in fields(GraphParams)} \
        | {f"near_duplicates.{f.name}" for f in fields(SketchParams)} \
        | {f"attribution.{f.name}" for f in fields(AttributionParams)}
    assert _all_keys(SCHEMA) - {"version"} == covered
    assert set(POLICY_KEYS) | {"graph", "sketch", "attribution"} == {
        f.name for f in fields(Policy)}


def test_the_packaged_file_holds_every_key_of_the_schema() -> None:
    from importlib import resources

    text = resources.files("distillguard.verdict").joinpath("data/policy.yaml").read_text()
    data = yaml.safe_load(text)
    assert {f"{s}.{k}" for s, v in data.items() if isinstance(v, dict) for k in v} \
        == _all_keys(SCHEMA) - {"version"}


def test_a_file_names_only_what_it_changes(tmp_path: Path) -> None:
    own = tmp_path / "policy.yaml"
    own.write_text("reasons: {hours_active_at_least: 12}\ncampaign: {owner_saturation: 10}\n")
    policy, default = load_policy(own), load_policy()
    assert (policy.reason_hours_active_at_least, policy.campaign_owner_saturation) == (12, 10)
    assert policy.campaign_min_owners == default.campaign_min_owners
    assert policy.graph == default.graph


@pytest.mark.parametrize(("text", "message"), BAD_POLICIES)
def test_a_bad_policy_is_refused_in_one_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    with pytest.raises(RuleValidationError) as caught:
        load_policy(path)
    assert message.format(path=path) in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_missing_policy_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(RuleValidationError, match=r"^cannot read policy .*none.yaml: No such "):
        load_policy(tmp_path / "none.yaml")


@pytest.mark.parametrize(("text", "message"), [*BAD_POLICIES, (None, "cannot read policy ")])
def test_scan_with_a_bad_policy_exits_2_with_one_line(tmp_path: Path, text: str | None,
                                                      message: str) -> None:
    path = tmp_path / "policy.yaml"
    if text is not None:
        path.write_text(text)
    logs = tmp_path / "logs"
    logs.mkdir()
    result = CliRunner().invoke(app, ["scan", str(logs), "--policy", str(path), "--out",
                                      str(tmp_path / "f.json")])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: ") and message.format(path=path) in lines[0]
    assert not (tmp_path / "f.json").exists()
