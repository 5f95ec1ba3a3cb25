from __future__ import annotations

from dataclasses import fields, replace
from datetime import datetime
from pathlib import Path

import pytest

from distillguard.verdict import AccountEvidence, build_findings, judge, load_policy
from distillguard.verdict.reasons import account_reasons
from distillguard.verdict.report import findings_markdown

POLICY = load_policy()
T0 = datetime(2026, 3, 1)


def _evidence(account: str, owner: str, *, template: float, sampled: int = 200,
              technique: float = 0.5, behavior: float = 0.5,
              parts: dict[str, float] | None = None) -> AccountEvidence:
    return AccountEvidence(
        account_id=account, owner=owner, exchanges=sampled * 2, first_seen=T0, last_seen=T0,
        hours_active=24, sampled=sampled, template_share=template,
        technique_shares={"cot_elicitation": technique, "grading": 0.0, "data_generation": 0.0,
                          "safe_rewrite": 0.0, "tool_use": 0.0},
        any_technique=technique, multi_turn=0.0, payment_fingerprint=f"pay-{owner}",
        campaign_template_share=template, behavior_affinity=behavior,
        behavior_parts={"days": behavior} if parts is None else parts)


def test_owners_tied_only_by_tier_and_client_make_no_campaign() -> None:
    """Evaluation teams of five organizations on the same public judge prompt: their
    accounts agree across owners on tier and SDK client only, not on timing, creation,
    payment or IP."""
    kind_only = {"tier": 0.09, "client": 0.05}
    members = [_evidence(f"a{i}", f"o{i}", template=0.9, behavior=0.14, parts=kind_only)
               for i in range(5)]
    verdicts, campaigns = judge(members, {m.account_id: (7, 0.9) for m in members}, POLICY)
    assert campaigns == [] and verdicts == []


def test_many_owners_on_shared_templates_make_a_campaign() -> None:
    members = [_evidence(f"a{i}", f"o{i}", template=0.8) for i in range(5)]
    verdicts, campaigns = judge(members, {m.account_id: (7, 0.9) for m in members}, POLICY)
    assert len(campaigns) == 1 and campaigns[0].campaign_id == "C1"
    assert {v.verdict for v in verdicts} == {"extraction"}


def test_extraction_needs_the_accounts_own_evidence() -> None:
    """Templates shared with a campaign are not enough: an account whose behavior does not
    agree with its campaign's (an evaluation team running the same public judge prompt),
    or with fewer sampled requests than the policy's minimum, is only `review`."""
    members = [_evidence(f"a{i}", f"o{i}", template=0.8) for i in range(5)]
    judge_team = _evidence("team", "o-team", template=0.9, behavior=0.02)
    # agrees with the campaign's other owners, but only on tier and client
    same_kind = _evidence("kind", "o-kind", template=0.9, behavior=0.14,
                          parts={"tier": 0.09, "client": 0.05})
    small = _evidence("small", "o-small", template=1.0,
                      sampled=POLICY.extraction_min_sampled_requests - 1)
    accounts = [*members, judge_team, same_kind, small]
    verdicts, _ = judge(accounts, {e.account_id: (3, 0.9) for e in accounts}, POLICY)
    verdict = {v.evidence.account_id: v.verdict for v in verdicts}
    assert verdict["team"] == verdict["kind"] == verdict["small"] == "review"
    assert {verdict[m.account_id] for m in members} == {"extraction"}


def test_weaker_behavior_is_enough_when_the_account_asks_what_its_campaign_asks() -> None:
    """In a campaign holding several operators, an account's agreement with the other
    owners is diluted by the others' behavior; its own template use agreeing with the
    campaign's is a second piece of evidence of its own and lowers the behavior it needs.
    An evaluation team sending only a public judge prompt agrees little with the
    campaign's template mix and keeps the higher floor."""
    members = [_evidence(f"a{i}", f"o{i}", template=0.8) for i in range(5)]
    diluted = _evidence("diluted", "o-d", template=0.7, behavior=0.07)
    team = _evidence("team", "o-team", template=1.0, behavior=0.07)
    accounts = [*members, diluted, team]
    community = {e.account_id: (3, 0.9) for e in accounts}
    community["team"] = (3, POLICY.extraction_min_content_affinity / 5)
    assert POLICY.extraction_min_behavior_affinity_content_agrees <= 0.07 < \
        POLICY.extraction_min_behavior_affinity
    verdicts, _ = judge(accounts, community, POLICY)
    by_id = {v.evidence.account_id: v for v in verdicts}
    assert (by_id["diluted"].verdict, by_id["team"].verdict) == ("extraction", "review")
    why = {name: next(r.text for r in account_reasons(by_id[name], POLICY)
                      if "behavior agrees" in r.text) for name in ("diluted", "team")}
    assert "needs 0.05 as its template use agrees with the campaign's at 0.90" in why["diluted"]
    assert "needs 0.10; 0.05 if its template use agreed with the campaign's" in why["team"]


def test_one_owner_with_many_accounts_is_not_a_campaign() -> None:
    members = [_evidence(f"a{i}", "same-company", template=0.9) for i in range(6)]
    verdicts, campaigns = judge(members, {m.account_id: (1, 0.9) for m in members}, POLICY)
    assert campaigns == [] and verdicts == []


def test_a_handful_of_requests_is_never_enough_for_extraction() -> None:
    members = [_evidence(f"a{i}", f"o{i}", template=0.8) for i in range(5)]
    tiny = _evidence("tiny", "o-tiny", template=0.34, sampled=3)
    verdicts, _ = judge([*members, tiny], {e.account_id: (3, 0.9) for e in [*members, tiny]},
                        POLICY)
    assert {v.evidence.account_id: v.verdict for v in verdicts}["tiny"] == "review"


def test_accounts_outside_campaigns_are_not_listed() -> None:
    verdicts, campaigns = judge([_evidence("eval", "me", template=0.3, technique=0.9)], {},
                                POLICY)
    assert verdicts == [] and campaigns == []


def test_linked_account_without_campaign_templates_is_no_member() -> None:
    members = [_evidence(f"a{i}", f"o{i}", template=0.8) for i in range(4)]
    popular_only = replace(_evidence("chat", "me", template=0.3), campaign_template_share=0.0)
    verdicts, campaigns = judge([*members, popular_only],
                                {e.account_id: (0, 0.5) for e in [*members, popular_only]},
                                POLICY)
    assert "chat" not in {v.evidence.account_id for v in verdicts}
    assert len(campaigns[0].members) == 4


def test_findings_follow_the_format_and_carry_reasons() -> None:
    members = [_evidence(f"a{i}", f"o{i}", template=0.8) for i in range(4)]
    verdicts, campaigns = judge(members, {m.account_id: (0, 0.9) for m in members}, POLICY)
    profiles = {"C1": {"capabilities": {"coding": 1.0}, "pivots": [], "exchanges": 1600,
                       "first_seen": T0, "last_seen": T0,
                       "indicators": {"ips": [], "asns": [], "payment_fingerprints": [],
                                      "client_fingerprints": [], "templates": []}}}
    findings = build_findings(verdicts, campaigns, profiles,
                              {"exchanges": 1600, "accounts": 4, "quarantined": 0,
                               "from": T0, "to": T0}, POLICY)
    assert findings["format"] == "distillguard-findings/1"
    account = findings["accounts"][0]
    assert set(account) >= {"account_id", "verdict", "score", "campaign_id", "signals",
                            "reasons"}
    assert "80% of a sample of 200 of its 400 requests" in account["reasons"][0]
    assert findings["campaigns"][0]["accounts"] == ["a0", "a1", "a2", "a3"]
    report = findings_markdown(findings)
    assert "Campaign C1" in report
    assert "(policy: `graph.candidate_min_template_requests`, `campaign.min_owners`" in report


def test_policy_file_names_only_what_it_changes(tmp_path: Path) -> None:
    own = tmp_path / "policy.yaml"
    own.write_text("sampling: {per_account: 10}\ncampaign: {min_owners: 5}\n")
    policy = load_policy(own)
    assert (policy.sampling_per_account, policy.campaign_min_owners) == (10, 5)
    assert policy.campaign_min_template_share == POLICY.campaign_min_template_share


def test_evidence_bound_shrinks_with_sample() -> None:
    big = _evidence("a", "o", template=0.5, sampled=1000)
    small = replace(big, sampled=10)
    assert small.template_share_low < big.template_share_low < 0.5


def _judged(template: float, *, hours: int = 24, multi_turn: float = 0.0,
            sampled: int = 200) -> dict:
    members = [replace(_evidence(f"a{i}", f"o{i}", template=0.8), hours_active=hours,
                       multi_turn=multi_turn, ) for i in range(4)]
    members.append(replace(_evidence("low", "o-low", template=template, sampled=sampled),
                           hours_active=hours, multi_turn=multi_turn))
    verdicts, campaigns = judge(members, {m.account_id: (0, 0.9) for m in members}, POLICY)
    return build_findings(verdicts, campaigns, {"C1": {"capabilities": {}, "pivots": [],
                                                       "indicators": {}}},
                          {"exchanges": 0, "accounts": 0, "quarantined": 0, "from": T0,
                           "to": T0}, POLICY)


def test_findings_name_the_policy_rules_that_fired() -> None:
    findings = _judged(0.05, sampled=20)
    by_id = {a["account_id"]: a for a in findings["accounts"]}
    extraction, review = by_id["a0"], by_id["low"]
    assert (extraction["verdict"], review["verdict"]) == ("extraction", "review")
    assert "verdict.extraction_min_campaign_template_share" in extraction["rules"]
    assert "verdict.extraction_min_campaign_template_share" not in review["rules"]
    for account in (extraction, review):
        assert {"campaign.min_owners", "campaign.min_template_share",
                "campaign.min_technique_share", "templates.min_owners",
                "verdict.technique_min_share", "reasons.multi_turn_share_below",
                "reasons.hours_active_at_least"} <= set(account["rules"])
        assert len(account["reason_rules"]) == len(account["reasons"])
        assert account["rules"] == list(dict.fromkeys(
            r for rules in account["reason_rules"] for r in rules))
    campaign = findings["campaigns"][0]
    assert campaign["rules"][:3] == ["graph.candidate_min_template_requests",
                                     "campaign.min_owners", "campaign.min_template_share"]
    assert campaign["reason_rules"][1] == []  # "N exchanges in all" rests on no threshold


def test_context_reasons_follow_their_policy_thresholds() -> None:
    quiet = _judged(0.8, hours=8, multi_turn=0.5)["accounts"][0]
    assert "reasons.hours_active_at_least" not in quiet["rules"]
    assert "reasons.multi_turn_share_below" not in quiet["rules"]
    assert not any("hours of the day" in r or "new conversation" in r for r in quiet["reasons"])
    policy = replace(POLICY, reason_hours_active_at_least=8, reason_multi_turn_share_below=0.6)
    e = replace(_evidence("a", "o", template=0.8), hours_active=8, multi_turn=0.5)
    verdicts, _ = judge([e, *[_evidence(f"b{i}", f"p{i}", template=0.8) for i in range(3)]],
                        {x: (0, 0.9) for x in ("a", "b0", "b1", "b2")}, policy)
    reasons = build_findings(verdicts[:1], [], {}, {}, policy)["accounts"][0]["reasons"]
    assert "active in 8 of the 24 hours of the day (UTC)" in reasons
    assert "50% of requests open a new conversation (no earlier turns)" in reasons


def test_every_cited_rule_is_a_key_of_the_policy() -> None:
    from distillguard.linkage import AttributionParams
    from distillguard.verdict.policy import POLICY_KEYS

    findings = _judged(0.05, sampled=20)
    cited = {r for f in findings["accounts"] + findings["campaigns"] for r in f["rules"]}
    assert cited and cited <= set(POLICY_KEYS.values()) | {
        f"attribution.{f.name}" for f in fields(AttributionParams)}


def test_owner_saturation_is_policy() -> None:
    members = [_evidence(f"a{i}", f"o{i}", template=0.8) for i in range(4)]
    community = {m.account_id: (0, 0.9) for m in members}
    _, (default,) = judge(members, community, POLICY)
    _, (saturated,) = judge(members, community, replace(POLICY, campaign_owner_saturation=4))
    assert default.score < saturated.score == pytest.approx(0.8)


def test_each_operator_of_a_community_is_its_own_campaign() -> None:
    """Two operators sending the same public pipelines share a community and its verdict;
    attribution (an operator per account) makes each its own campaign, and the part where
    no account has enough evidence of its own (evaluation teams) is no campaign: its
    accounts stay `review`, in none."""
    first = [_evidence(f"a{i}", f"o{i}", template=0.8) for i in range(5)]
    second = [_evidence(f"b{i}", f"p{i}", template=0.8) for i in range(4)]
    teams = [_evidence(f"t{i}", f"q{i}", template=0.9, behavior=0.02) for i in range(3)]
    accounts = [*first, *second, *teams]
    community = {e.account_id: (3, 0.9) for e in accounts}
    operators = {e.account_id: (0 if e in first else 1 if e in second else 2)
                 for e in accounts}
    whole, campaigns = judge(accounts, community, POLICY)
    assert len(campaigns) == 1
    verdicts, campaigns = judge(accounts, community, POLICY, operators)
    assert sorted(len(c.members) for c in campaigns) == [4, 5]
    assert {v.evidence.account_id: v.verdict for v in verdicts} == {
        v.evidence.account_id: v.verdict for v in whole}
    campaign_of = {v.evidence.account_id: v.campaign for v in verdicts}
    assert len({id(campaign_of[e.account_id]) for e in first}) == 1
    assert campaign_of["a0"] is not campaign_of["b0"]
    assert all(campaign_of[e.account_id] is None for e in teams)


def test_one_operator_in_two_communities_is_one_campaign() -> None:
    """An operator whose pathways ask for different pipelines falls in two communities;
    attribution gives its accounts one operator number, and its parts of both are one
    campaign while each account keeps its own community's verdict."""
    first = [_evidence(f"a{i}", f"o{i}", template=0.8) for i in range(4)]
    second = [_evidence(f"b{i}", f"p{i}", template=0.8) for i in range(4)]
    other = [_evidence(f"c{i}", f"q{i}", template=0.8) for i in range(4)]
    community = {e.account_id: (1 if e in first else 2, 0.9) for e in first + second + other}
    operators = {e.account_id: (0 if e in other else 1) for e in first + second + other}
    verdicts, campaigns = judge(first + second + other, community, POLICY, operators)
    assert sorted(len(c.members) for c in campaigns) == [4, 8]
    campaign_of = {v.evidence.account_id: v.campaign for v in verdicts}
    assert campaign_of["a0"] is campaign_of["b0"] is not campaign_of["c0"]
    assert {v.evidence.account_id: v.verdict for v in verdicts} == dict.fromkeys(
        community, "extraction")
    # without attribution each community is its own campaign
    whole, _ = judge(first + second + other, community, POLICY)
    campaign_of = {v.evidence.account_id: v.campaign for v in whole}
    assert campaign_of["a0"] is not campaign_of["b0"] is campaign_of["c0"]


def test_an_operator_part_of_one_owner_is_no_campaign_and_not_extraction() -> None:
    """An evaluation team (three accounts, one organization) sending a pipeline's public
    judge prompt shares a community with the operator that runs the pipeline: the
    community has owners enough, the team's own part has one. Its accounts, strong as
    they look on their own, are listed for review in no campaign."""
    operator = [_evidence(f"a{i}", f"o{i}", template=0.8) for i in range(4)]
    team = [_evidence(f"t{i}", "team", template=0.9) for i in range(3)]
    community = {e.account_id: (5, 0.9) for e in operator + team}
    operators = {e.account_id: (0 if e in operator else 1) for e in operator + team}
    verdicts, campaigns = judge(operator + team, community, POLICY, operators)
    assert [len(c.members) for c in campaigns] == [4]
    verdict_of = {v.evidence.account_id: (v.verdict, v.campaign) for v in verdicts}
    assert all(verdict_of[e.account_id] == ("review", None) for e in team)
    assert all(verdict_of[e.account_id][0] == "extraction" for e in operator)
