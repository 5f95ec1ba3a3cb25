"""Campaign profiles from the campaign queries' rows, with the policy's limits."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from distillguard.verdict.campaigns import CampaignVerdict
from distillguard.verdict.evidence import AccountEvidence
from distillguard.verdict.policy import load_policy
from distillguard.verdict.profiles import (
    ProfileRows,
    add_sample_prompts,
    campaign_members_table,
    campaign_profiles,
    pick_sample_prompts,
)

T0 = datetime(2026, 3, 1)
POLICY = replace(load_policy(), profile_max_indicators=2, profile_max_templates=2,
                 profile_sample_prompts=2, profile_sample_prompt_chars=12)


def _member(account: str) -> AccountEvidence:
    return AccountEvidence(account, f"o-{account}", 10, T0, T0, 1, 10, 0.9, {}, 0.5, 0.0)


CAMPAIGNS = [CampaignVerdict("C1", [_member("a"), _member("b"), _member("c")], 3, 0.9, {}, 0.5,
                             0.8),
             CampaignVerdict("C2", [_member("x"), _member("y")], 2, 0.6, {}, 0.4, 0.5)]
ROWS = ProfileRows(
    spans=[("C1", 300, T0, T0), ("C2", 20, T0, T0)],
    capabilities=[("C1", "coding", 3), ("C1", "math_reasoning", 1), ("C2", "writing", 5)],
    indicators=[("C1", "ips", "198.51.100.1", 3), ("C1", "ips", "198.51.100.2", 2),
                ("C1", "ips", "198.51.100.3", 2), ("C1", "asns", "64500", 3)],
    template_uses=[("C1", 5, 13), ("C1", -1, 4), ("C1", 9, 2), ("C2", 9, 1),
                   ("C9", 5, 100)],
    creation_batches=[("C1", 3, 2)],
    baseline_pivots=[("model-b2", 1000, 100)],
    pivots=[("C1", "model-b2", T0, 200, 150), ("C2", "model-b3", T0, 0, 0)],
)


def test_members_table_lists_each_account_once_with_its_campaign() -> None:
    table = campaign_members_table(CAMPAIGNS)
    assert table.to_pydict() == {"account_id": ["a", "b", "c", "x", "y"],
                                 "campaign_id": ["C1", "C1", "C1", "C2", "C2"]}


def test_profile_fields_and_policy_limits() -> None:
    profiles = campaign_profiles(CAMPAIGNS, ROWS, POLICY)
    c1, c2 = profiles["C1"], profiles["C2"]
    assert (c1["exchanges"], c1["first_seen"]) == (300, T0)
    assert c1["capabilities"] == {"coding": 0.75, "math_reasoning": 0.25}
    assert c1["indicators"]["ips"] == ["198.51.100.1", "198.51.100.2"]  # max_indicators
    assert c1["indicators"]["asns"] == [64500]
    # most used first, then by unit; strangers' uses do not count; at most max_templates
    assert c1["indicators"]["templates"] == [f"unit:{5:016x}", f"unit:{(-1) & (2**64 - 1):016x}"]
    assert c2["indicators"]["templates"] == [f"unit:{9:016x}"]
    assert c1["created_in_batches"] == {"accounts_with_creation_time": 3,
                                        "created_within_10_min_of_another": 2}
    assert "created_in_batches" not in c2
    assert c1["pivots"] == [{"model": "model-b2", "released_at": T0, "share_within_24h": 0.75,
                             "exchanges_within_24h": 200, "baseline_share_within_24h": 0.1}]
    assert c2["pivots"][0]["share_within_24h"] == 0.0
    assert c2["pivots"][0]["baseline_share_within_24h"] is None


def test_sample_prompts_one_per_account_cut_to_length() -> None:
    rows = [("a", "r1", 1), ("a", "r2", 2), ("b", "r3", 3), ("c", "r4", 4), ("y", "r5", 5),
            ("stranger", "r6", 6)]
    chosen, picks = pick_sample_prompts(rows, CAMPAIGNS, POLICY.profile_sample_prompts)
    assert chosen == {"C1": ["r1", "r3"], "C2": ["r5"]}
    assert picks == [("r1", 1), ("r3", 3), ("r5", 5)]
    profiles = {"C1": {}, "C2": {}}
    add_sample_prompts(profiles, chosen, [
        ("r1", "System.", [{"role": "user", "content": "Grade these two answers please"}]),
        ("r3", None, [{"role": "user", "content": None}]),
        ("r5", None, [{"role": "user", "content": "short"}])], POLICY.profile_sample_prompt_chars)
    assert profiles == {"C1": {"sample_prompts": ["System.\nGrad"]},
                        "C2": {"sample_prompts": ["short"]}}
