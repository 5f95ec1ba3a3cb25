"""Analysts' decisions applied to the next scan's findings.

An analyst confirms or dismisses a campaign or an account (the dashboard keeps
each decision in the store's ``decisions`` table with a snapshot of the
evidence in front of the analyst: ``account_snapshot``, ``campaign_snapshot``).
The next scan reads them as plain values (``decisions_from_rows``) and
``apply_decisions`` applies the latest decision on each subject:

- a dismissed account, or an account of a dismissed campaign, whose evidence is
  the same as when it was dismissed is not listed: it moves to
  ``dismissed_accounts`` with the decision, and a campaign left with no
  account moves to ``dismissed_campaigns``;
- one with new evidence (``new_evidence``: its verdict rose, a policy rule
  fired that had not, its campaign shows a new technique, mostly new templates
  or mostly new accounts) stays listed, with a reason naming the decision and
  what is new;
- confirmed accounts and campaigns carry the decision (``decision``);
- ``decisions`` lists each decision in force and what it did in this scan.

Campaign numbers change from scan to scan; a decision on a campaign follows the
campaign of this scan most of whose accounts were in it
(``decisions.same_campaign_min_account_share``).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from distillguard.verdict.findings import iso
from distillguard.verdict.policy import Policy

if TYPE_CHECKING:
    import duckdb

__all__ = [
    "DECISIONS_SQL",
    "DECISION_KINDS",
    "DECISION_VALUES",
    "Decision",
    "account_decision",
    "account_snapshot",
    "apply_decisions",
    "campaign_snapshot",
    "decisions_from_rows",
    "in_force",
    "match_campaigns",
    "new_evidence",
    "read_decisions",
]

DECISION_KINDS = ("campaign", "account")
# ``withdrawn`` takes back an earlier decision on the same subject.
DECISION_VALUES = ("confirmed", "dismissed", "withdrawn")

# Every decision ever recorded, oldest first (the store's ``decisions`` table).
DECISIONS_SQL = """
SELECT decision_id, kind, subject, decision, note, analyst, decided_at, findings_generated_at,
       evidence
FROM decisions ORDER BY decided_at, decision_id
"""


@dataclass(frozen=True)
class Decision:
    """One analyst's decision on a campaign or an account, with the evidence seen."""

    kind: str
    subject: str
    decision: str
    note: str = ""
    analyst: str = ""
    decided_at: str = ""
    findings_generated_at: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    decision_id: str = ""

    @property
    def key(self) -> tuple[str, ...]:
        """What the decision is about: an account, or a campaign of one scan (campaign
        numbers are per scan)."""
        if self.kind == "campaign":
            return (self.kind, self.subject, self.findings_generated_at or "")
        return (self.kind, self.subject)

    def summary(self) -> dict[str, Any]:
        """What findings show of the decision."""
        return {"kind": self.kind, "subject": self.subject, "decision": self.decision,
                "analyst": self.analyst, "decided_at": self.decided_at, "note": self.note}


def decisions_from_rows(rows: Iterable[tuple[Any, ...]]) -> list[Decision]:
    """``DECISIONS_SQL`` rows as ``Decision`` values (times as RFC 3339 UTC text)."""
    out = []
    for decision_id, kind, subject, decision, note, analyst, at, generated, evidence in rows:
        out.append(Decision(kind, subject, decision, note or "", analyst or "", str(iso(at)),
                            generated, orjson.loads(evidence) if evidence else {}, decision_id))
    return out


def read_decisions(con: duckdb.DuckDBPyConnection) -> list[Decision]:
    """Every decision recorded in the store ``con`` holds, oldest first (DuckDB's errors
    are left to the caller: ``engines.map_duckdb_errors``)."""
    cursor = con.cursor()
    try:
        return decisions_from_rows(cursor.execute(DECISIONS_SQL).fetchall())
    finally:
        cursor.close()


def in_force(decisions: Iterable[Decision]) -> dict[tuple[str, ...], Decision]:
    """The latest decision on each subject (``Decision.key``), withdrawn ones left out.

    >>> d = [Decision("account", "a", "dismissed", decided_at="1"),
    ...      Decision("account", "a", "withdrawn", decided_at="2"),
    ...      Decision("account", "b", "confirmed", decided_at="1")]
    >>> sorted(in_force(d))
    [('account', 'b')]
    """
    latest: dict[tuple[str, ...], Decision] = {}
    for d in sorted(decisions, key=lambda d: d.decided_at):
        latest[d.key] = d
    return {key: d for key, d in latest.items() if d.decision != "withdrawn"}


def _templates(campaign: dict[str, Any] | None) -> list[str]:
    return list((campaign or {}).get("indicators", {}).get("templates", []))


def account_snapshot(account: dict[str, Any], campaign: dict[str, Any] | None) -> dict[str, Any]:
    """The evidence of a findings account (and its campaign) a decision keeps."""
    return {"verdict": account["verdict"], "rules": list(account.get("rules", [])),
            "campaign_id": account.get("campaign_id"),
            "techniques": list((campaign or {}).get("techniques", [])),
            "templates": _templates(campaign)}


def campaign_snapshot(campaign: dict[str, Any],
                      accounts: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The evidence of a findings campaign a decision keeps: its accounts (each with
    its verdict and rules), techniques, top templates and rules."""
    return {"accounts": {a: {"verdict": accounts[a]["verdict"],
                             "rules": list(accounts[a].get("rules", []))}
                         for a in campaign["accounts"] if a in accounts},
            "techniques": list(campaign.get("techniques", [])),
            "templates": _templates(campaign), "rules": list(campaign.get("rules", []))}


def new_evidence(then: dict[str, Any], account: dict[str, Any], campaign: dict[str, Any] | None,
                 policy: Policy) -> list[str]:
    """What an account shows now that it did not when it was decided on (``then``:
    its ``account_snapshot``, or its entry in a ``campaign_snapshot`` with the
    campaign's techniques and templates).

    >>> from distillguard.verdict.policy import load_policy
    >>> then = {"verdict": "review", "rules": ["a.b"], "techniques": ["t1"],
    ...         "templates": ["unit:1", "unit:2"]}
    >>> now = {"verdict": "extraction", "rules": ["a.b", "c.d"]}
    >>> c = {"techniques": ["t1"], "indicators": {"templates": ["unit:1", "unit:3"]}}
    >>> for words in new_evidence(then, now, c, load_policy()):
    ...     print(words)
    its verdict rose from review to extraction
    policy rules that had not fired: c.d
    1 of its campaign's 2 top templates are new
    """
    found = []
    if then.get("verdict") == "review" and account["verdict"] == "extraction":
        found.append("its verdict rose from review to extraction")
    rules = [r for r in account.get("rules", []) if r not in set(then.get("rules", []))]
    if rules:
        found.append(f"policy rules that had not fired: {', '.join(rules)}")
    techniques = [t for t in (campaign or {}).get("techniques", [])
                  if t not in set(then.get("techniques", []))]
    if techniques:
        found.append(f"its campaign now shows {', '.join(techniques)}")
    templates = _templates(campaign)
    fresh = [t for t in templates if t not in set(then.get("templates", []))]
    if templates and len(fresh) / len(templates) >= policy.decisions_new_templates_min_share:
        found.append(f"{len(fresh)} of its campaign's {len(templates)} top templates are new")
    return found


def match_campaigns(campaigns: list[dict[str, Any]], decisions: Iterable[Decision],
                    policy: Policy) -> dict[str, Decision]:
    """This scan's campaign each campaign decision follows: the one with the largest
    share of its accounts in the decided campaign, when that share is at least
    ``decisions.same_campaign_min_account_share``."""
    matched: dict[str, Decision] = {}
    for d in sorted(decisions, key=lambda d: d.decided_at):
        if d.kind != "campaign":
            continue
        then = set(d.evidence.get("accounts", {}))
        best, best_share = None, 0.0
        for c in campaigns:
            share = len(then.intersection(c["accounts"])) / max(len(c["accounts"]), 1)
            if share > best_share:
                best, best_share = c["campaign_id"], share
        if best is not None and best_share >= policy.decisions_same_campaign_min_account_share:
            matched[best] = d
    return matched


def account_decision(account_id: str, forced: dict[tuple[str, ...], Decision]
                     ) -> Decision | None:
    """The decision in force on an account: its own, else the latest on a campaign it
    was in when decided (``forced`` from ``in_force``)."""
    own = forced.get(("account", account_id))
    if own is not None:
        return own
    holding = [d for d in forced.values()
               if d.kind == "campaign" and account_id in d.evidence.get("accounts", {})]
    return max(holding, key=lambda d: d.decided_at) if holding else None


def _evidence_then(d: Decision, account_id: str) -> dict[str, Any]:
    if d.kind == "account":
        return d.evidence
    return {**d.evidence.get("accounts", {}).get(account_id, {}),
            "techniques": d.evidence.get("techniques", []),
            "templates": d.evidence.get("templates", [])}


def _campaign_mostly_new(d: Decision, campaign: dict[str, Any] | None,
                         matched: dict[str, Decision]) -> list[str]:
    if d.kind != "campaign" or campaign is None or matched.get(campaign["campaign_id"]) is d:
        return []
    then = set(d.evidence.get("accounts", {}))
    new = sum(a not in then for a in campaign["accounts"])
    return [f"{new:,} of the {len(campaign['accounts']):,} accounts of campaign "
            f"{campaign['campaign_id']} were not in the campaign dismissed"]


def _words(d: Decision) -> str:
    who = f" by {d.analyst}" if d.analyst else ""
    what = "its campaign" if d.kind == "campaign" else "the account"
    note = f" ({d.note})" if d.note else ""
    return f"{what} was dismissed{who} on {d.decided_at[:10]}{note}"


def apply_decisions(findings: dict[str, Any], decisions: Iterable[Decision],
                    policy: Policy) -> dict[str, Any]:
    """``findings`` with the analysts' decisions applied (unchanged when there are none)."""
    forced = in_force(decisions)
    if not forced:
        return findings
    out = copy.deepcopy(findings)
    campaigns = {c["campaign_id"]: c for c in out["campaigns"]}
    matched = match_campaigns(out["campaigns"], forced.values(), policy)
    effects: dict[tuple[str, ...], dict[str, Any]] = {d.key: {
        **d.summary(), "campaign_now": None, "listed": 0, "not_listed_again": 0}
        for d in forced.values()}

    def effect(d: Decision) -> dict[str, Any]:
        return effects[d.key]

    for cid, d in matched.items():
        campaigns[cid]["decision"] = d.summary()
        effect(d)["campaign_now"] = cid
    kept, dismissed = [], []
    for account in out["accounts"]:
        d = account_decision(account["account_id"], forced)
        if d is None:
            kept.append(account)
            continue
        campaign = campaigns.get(account.get("campaign_id") or "")
        if d.decision == "confirmed":
            account["decision"] = d.summary()
            effect(d)["listed"] += 1
            kept.append(account)
            continue
        fresh = (new_evidence(_evidence_then(d, account["account_id"]), account, campaign, policy)
                 + _campaign_mostly_new(d, campaign, matched))
        if fresh:
            account["decision"] = {**d.summary(), "new_evidence": fresh}
            account["reasons"].append(f"{_words(d)}; listed again for new evidence: "
                                      f"{'; '.join(fresh)}")
            if "reason_rules" in account:
                account["reason_rules"].append([])
            effect(d)["listed"] += 1
            kept.append(account)
        else:
            dismissed.append({"account_id": account["account_id"],
                              "campaign_id": account.get("campaign_id"),
                              "verdict": account["verdict"], "score": account["score"],
                              "decision": d.summary(),
                              "why": f"{_words(d)}; same evidence as then"})
            effect(d)["not_listed_again"] += 1
    gone = {a["account_id"] for a in dismissed}
    out["accounts"] = kept
    listed, emptied = [], []
    for c in out["campaigns"]:
        c["accounts"] = [a for a in c["accounts"] if a not in gone]
        (listed if c["accounts"] else emptied).append(c)
    out["campaigns"] = listed
    out["dismissed_accounts"] = dismissed
    out["dismissed_campaigns"] = [{"campaign_id": c["campaign_id"], "score": c["score"],
                                   "exchanges": c["exchanges"], "decision": c.get("decision")}
                                  for c in emptied]
    for e in effects.values():
        e["effect"] = _effect_words(e)
    out["decisions"] = sorted(effects.values(), key=lambda e: e["decided_at"])
    return out


def _effect_words(e: dict[str, Any]) -> str:
    if e["decision"] == "confirmed":
        return (f"confirmed; {e['listed']:,} account(s) listed by this scan"
                if e["listed"] or e["campaign_now"] else "confirmed; not listed by this scan")
    if not e["listed"] and not e["not_listed_again"]:
        return "dismissed; not listed by this scan anyway"
    return (f"dismissed; {e['not_listed_again']:,} account(s) not listed again (same evidence), "
            f"{e['listed']:,} listed again for new evidence")
