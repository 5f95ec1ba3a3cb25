from __future__ import annotations

from pathlib import Path

import pytest

from distillguard.errors import RuleValidationError
from distillguard.safeguards import (
    NO_SAFEGUARDS,
    canary_for,
    derive_key,
    load_safeguard_policy,
    plan_for,
)

SECRETS = {"watermark_secret": "w-secret", "canary_secret": "c-secret"}


def test_accounts_judged_legitimate_get_nothing() -> None:
    policy = load_safeguard_policy()
    assert plan_for(None, "acct-1", policy, **SECRETS) == NO_SAFEGUARDS
    assert plan_for("legitimate", "acct-1", policy, **SECRETS) == NO_SAFEGUARDS
    assert not NO_SAFEGUARDS.active


def test_review_gets_summaries_watermark_and_phrase_but_no_decoy() -> None:
    plan = plan_for("review", "C7", load_safeguard_policy(), **SECRETS)
    assert plan.reasoning == "summary" and not plan.answer_only
    assert plan.watermark_key == derive_key("w-secret", "C7")
    assert plan.canary == canary_for("c-secret", "C7")
    assert plan.signature_share == 0.05 and not plan.decoy_tool


def test_extraction_gets_answer_only_and_a_decoy() -> None:
    plan = plan_for("extraction", "C7", load_safeguard_policy(), **SECRETS)
    assert plan.reasoning == "drop" and plan.answer_only and plan.decoy_tool


def test_without_secrets_the_keyed_safeguards_are_off() -> None:
    plan = plan_for("review", "C7", load_safeguard_policy(), watermark_secret=None,
                    canary_secret=None)
    assert plan.watermark_key is None and plan.canary is None and plan.signature_share == 0.0
    assert plan.reasoning == "summary"


@pytest.mark.parametrize(("text", "field"), [
    ("version: 2\n", "version"),
    ("version: 1\nverdicts: {legitimate: {watermark: true}}\n", "verdicts"),
    ("version: 1\nverdicts: {review: {reasoning: hide}}\n", "reasoning"),
    ("version: 1\nverdicts: {review: {signature_share: 2}}\n", "signature_share"),
    ("version: 1\nverdicts: {review: {watermark: maybe}}\n", "watermark"),
    ("version: 1\nverdicts: {review: {colour: red}}\n", "unknown keys"),
    ("version: 1\nwatermark: {gamma: 1.5}\n", "gamma"),
    ("version: 1\nwatermark: {strength: 3}\n", "watermark"),
    ("version: [\n", "not YAML"),
])
def test_bad_files_are_refused_naming_the_field(tmp_path: Path, text: str, field: str) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    with pytest.raises(RuleValidationError, match=field):
        load_safeguard_policy(path)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RuleValidationError, match="cannot read"):
        load_safeguard_policy(tmp_path / "none.yaml")


def test_a_watermarked_plan_carries_its_header_value() -> None:
    from distillguard.safeguards import watermark_header

    policy = load_safeguard_policy()
    plan = plan_for("review", "C7", policy, **SECRETS)
    assert plan.watermark_key is not None
    assert plan.watermark_request == watermark_header(plan.watermark_key, policy.watermark)
    unmarked = plan_for("review", "C7", policy, watermark_secret=None, canary_secret="c")
    assert unmarked.watermark_request is None and NO_SAFEGUARDS.watermark_request is None
