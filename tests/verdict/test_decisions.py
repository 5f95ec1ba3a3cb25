"""Analysts' decisions applied to the next scan's findings (verdict.decisions)."""

from __future__ import annotations

import copy
from typing import Any

from distillguard.verdict.decisions import (
    Decision,
    account_snapshot,
    apply_decisions,
    campaign_snapshot,
    in_force,
    match_campaigns,
)
from distillguard.verdict.policy import load_policy

POLICY = load_policy()
TEMPLATES = ["unit:0000000000000001", "unit:0000000000000002", "unit:0000000000000003"]


def _account(account_id: str, campaign_id: str | None, verdict: str = "extraction",
             rules: tuple[str, ...] = ("templates.min_owners",)) -> dict[str, Any]:
    return {"account_id": account_id, "verdict": verdict, "score": 0.9,
            "campaign_id": campaign_id, "signals": {}, "reasons": ["r"],
            "rules": list(rules), "reason_rules": [list(rules)]}


def _campaign(campaign_id: str, accounts: list[str], templates: list[str] | None = None,
              techniques: tuple[str, ...] = ("grading",)) -> dict[str, Any]:
    return {"campaign_id": campaign_id, "score": 0.8, "accounts": accounts, "exchanges": 100,
            "techniques": list(techniques), "rules": ["campaign.min_owners"],
            "indicators": {"templates": list(TEMPLATES if templates is None else templates)},
            "pivots": []}


def findings(*accounts: dict[str, Any], campaigns: list[dict[str, Any]],
             generated_at: str = "2026-03-01T00:00:00Z") -> dict[str, Any]:
    return {"format": "distillguard-findings/1", "generated_at": generated_at,
            "input": {"exchanges": 100}, "accounts": list(accounts), "campaigns": campaigns}


def _decide(f: dict[str, Any], kind: str, subject: str, decision: str, at: str = "2026-03-02T00:00:00Z",
            note: str = "") -> Decision:
    accounts = {a["account_id"]: a for a in f["accounts"]}
    campaigns = {c["campaign_id"]: c for c in f["campaigns"]}
    if kind == "campaign":
        evidence = campaign_snapshot(campaigns[subject], accounts)
    else:
        evidence = account_snapshot(accounts[subject],
                                    campaigns.get(accounts[subject]["campaign_id"] or ""))
    return Decision(kind, subject, decision, note, "ana", at, f["generated_at"], evidence,
                    f"d-{kind}-{subject}-{at}")


def _scan_one() -> dict[str, Any]:
    return findings(_account("a", "C1"), _account("b", "C1"), _account("c", "C1", "review"),
                    campaigns=[_campaign("C1", ["a", "b", "c"])])


def test_no_decision_leaves_findings_untouched() -> None:
    f = _scan_one()
    assert apply_decisions(f, [], POLICY) is f
    withdrawn = [_decide(f, "account", "a", "dismissed", "2026-03-02T00:00:00Z"),
                 _decide(f, "account", "a", "withdrawn", "2026-03-03T00:00:00Z")]
    assert in_force(withdrawn) == {}
    assert apply_decisions(f, withdrawn, POLICY) is f


def test_dismissed_account_with_the_same_evidence_is_not_listed_again() -> None:
    then = _scan_one()
    d = _decide(then, "account", "b", "dismissed", note="our own eval team")
    now = apply_decisions(_scan_one(), [d], POLICY)
    assert [a["account_id"] for a in now["accounts"]] == ["a", "c"]
    assert now["campaigns"][0]["accounts"] == ["a", "c"]
    [gone] = now["dismissed_accounts"]
    assert gone["account_id"] == "b" and gone["decision"]["note"] == "our own eval team"
    assert "same evidence" in gone["why"]
    [effect] = now["decisions"]
    assert effect["not_listed_again"] == 1 and effect["listed"] == 0
    assert "1 account(s) not listed again" in effect["effect"]


def test_dismissed_account_with_new_evidence_is_listed_with_the_reason() -> None:
    then = _scan_one()
    d = _decide(then, "account", "c", "dismissed")
    scan = _scan_one()
    scan["accounts"][2] = _account("c", "C1", "extraction",
                                   rules=("templates.min_owners", "linkage.lockstep_min_share"))
    now = apply_decisions(scan, [d], POLICY)
    c = next(a for a in now["accounts"] if a["account_id"] == "c")
    assert c["decision"]["new_evidence"] == [
        "its verdict rose from review to extraction",
        "policy rules that had not fired: linkage.lockstep_min_share"]
    assert c["reasons"][-1].startswith("the account was dismissed by ana on 2026-03-02")
    assert len(c["reasons"]) == len(c["reason_rules"])
    assert now["dismissed_accounts"] == []


def test_new_templates_or_techniques_are_new_evidence() -> None:
    then = _scan_one()
    d = _decide(then, "account", "a", "dismissed")
    fresh = _scan_one()
    fresh["campaigns"][0]["indicators"]["templates"] = ["unit:9", "unit:8", TEMPLATES[0]]
    assert [a["account_id"] for a in apply_decisions(fresh, [d], POLICY)["accounts"]] == [
        "a", "b", "c"]
    a_few = _scan_one()
    a_few["campaigns"][0]["indicators"]["templates"] = ["unit:9", *TEMPLATES[:2]]
    assert "a" not in [a["account_id"] for a in apply_decisions(a_few, [d], POLICY)["accounts"]]
    technique = _scan_one()
    technique["campaigns"][0]["techniques"] = ["grading", "cot_elicitation"]
    [a] = [x for x in apply_decisions(technique, [d], POLICY)["accounts"] if x["account_id"] == "a"]
    assert a["decision"]["new_evidence"] == ["its campaign now shows cot_elicitation"]


def test_dismissed_campaign_follows_its_accounts_across_renumbering() -> None:
    then = _scan_one()
    d = _decide(then, "campaign", "C1", "dismissed", note="pentest")
    other = _campaign("C1", ["x", "y", "z"], templates=["unit:7"])
    renumbered = findings(_account("x", "C1"), _account("y", "C1"), _account("z", "C1"),
                          _account("a", "C2"), _account("b", "C2"), _account("c", "C2", "review"),
                          campaigns=[other, _campaign("C2", ["a", "b", "c"])],
                          generated_at="2026-03-05T00:00:00Z")
    assert match_campaigns(renumbered["campaigns"], [d], POLICY) == {"C2": d}
    now = apply_decisions(renumbered, [d], POLICY)
    assert [c["campaign_id"] for c in now["campaigns"]] == ["C1"]
    assert now["dismissed_campaigns"][0]["campaign_id"] == "C2"
    assert now["dismissed_campaigns"][0]["decision"]["note"] == "pentest"
    assert {a["account_id"] for a in now["dismissed_accounts"]} == {"a", "b", "c"}


def test_accounts_that_joined_a_dismissed_campaign_are_listed() -> None:
    then = _scan_one()
    d = _decide(then, "campaign", "C1", "dismissed")
    grown = findings(_account("a", "C1"), _account("b", "C1"), _account("c", "C1", "review"),
                     _account("n", "C1"), campaigns=[_campaign("C1", ["a", "b", "c", "n"])])
    now = apply_decisions(grown, [d], POLICY)
    assert [a["account_id"] for a in now["accounts"]] == ["n"]
    assert now["campaigns"][0]["accounts"] == ["n"]
    assert now["campaigns"][0]["decision"]["decision"] == "dismissed"


def test_a_campaign_mostly_new_is_new_evidence_for_its_old_accounts() -> None:
    then = _scan_one()
    d = _decide(then, "campaign", "C1", "dismissed")
    newcomers = [f"n{i}" for i in range(5)]
    grown = findings(_account("a", "C1"), *(_account(n, "C1") for n in newcomers),
                     campaigns=[_campaign("C1", ["a", *newcomers])])
    now = apply_decisions(grown, [d], POLICY)
    a = next(x for x in now["accounts"] if x["account_id"] == "a")
    assert a["decision"]["new_evidence"] == [
        "5 of the 6 accounts of campaign C1 were not in the campaign dismissed"]


def test_confirmations_are_carried_and_an_account_decision_beats_its_campaign() -> None:
    then = _scan_one()
    confirm = _decide(then, "campaign", "C1", "confirmed", "2026-03-02T00:00:00Z")
    spare = _decide(then, "account", "c", "dismissed", "2026-03-03T00:00:00Z")
    now = apply_decisions(copy.deepcopy(then), [confirm, spare], POLICY)
    assert now["campaigns"][0]["decision"]["decision"] == "confirmed"
    assert {a["account_id"]: a["decision"]["decision"] for a in now["accounts"]} == {
        "a": "confirmed", "b": "confirmed"}
    assert [a["account_id"] for a in now["dismissed_accounts"]] == ["c"]


def test_same_campaign_number_in_two_scans_is_two_subjects() -> None:
    first = _scan_one()
    second = findings(_account("x", "C1"), campaigns=[_campaign("C1", ["x"])],
                      generated_at="2026-03-09T00:00:00Z")
    a = _decide(first, "campaign", "C1", "dismissed", "2026-03-02T00:00:00Z")
    b = _decide(second, "campaign", "C1", "confirmed", "2026-03-10T00:00:00Z")
    assert len(in_force([a, b])) == 2


def test_decided_accounts_absent_from_the_scan_are_reported() -> None:
    then = _scan_one()
    d = _decide(then, "account", "a", "confirmed")
    quiet = findings(_account("b", "C1"), _account("c", "C1"), campaigns=[_campaign("C1", ["b", "c"])])
    [effect] = apply_decisions(quiet, [d], POLICY)["decisions"]
    assert effect["effect"] == "confirmed; not listed by this scan"
