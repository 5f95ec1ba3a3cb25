"""Findings, format v1 (shared/spec/findings.md).

Beyond the format's keys, each account and campaign carries ``rules``: the ids
of the policy rules that fired (keys of ``policy.yaml``), and ``reason_rules``:
for each of its ``reasons``, the ids it rests on.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from distillguard.verdict.campaigns import AccountVerdict, CampaignVerdict
from distillguard.verdict.policy import Policy
from distillguard.verdict.reasons import Reason, account_reasons, campaign_reasons, rules_fired

__all__ = ["FINDINGS_FORMAT", "build_findings", "iso"]

FINDINGS_FORMAT = "distillguard-findings/1"


def iso(value: Any) -> Any:
    """RFC 3339 UTC text for a naive-UTC datetime; anything else unchanged."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.isoformat(timespec="seconds") + "Z"
    return value


def _reasons(reasons: list[Reason]) -> dict[str, Any]:
    return {"reasons": [r.text for r in reasons], "rules": rules_fired(reasons),
            "reason_rules": [list(r.rules) for r in reasons]}


def _account(v: AccountVerdict, policy: Policy) -> dict[str, Any]:
    e = v.evidence
    signals = {"template_share": round(e.template_share, 4),
               "campaign_template_share": round(e.campaign_template_share, 4),
               "campaign_affinity": round(e.campaign_affinity, 4),
               **{k: round(s, 4) for k, s in e.technique_shares.items()},
               "multi_turn_share": round(e.multi_turn, 4),
               "hours_active": e.hours_active,
               "exchanges": e.exchanges, "sampled": e.sampled}
    return {"account_id": e.account_id, "verdict": v.verdict, "score": v.score,
            "campaign_id": v.campaign.campaign_id if v.campaign else None,
            "signals": signals, **_reasons(account_reasons(v, policy))}


def _campaign(c: CampaignVerdict, profile: dict[str, Any], policy: Policy) -> dict[str, Any]:
    techniques = [t for t, s in sorted(c.technique_shares.items(), key=lambda kv: -kv[1])
                  if s >= policy.technique_min_share]
    pivots = [{**p, "released_at": iso(p["released_at"])} for p in profile["pivots"]]
    return {
        "campaign_id": c.campaign_id, "score": c.score,
        "accounts": sorted(m.account_id for m in c.members),
        "exchanges": profile.get("exchanges", sum(m.exchanges for m in c.members)),
        "first_seen": iso(profile.get("first_seen")), "last_seen": iso(profile.get("last_seen")),
        "capabilities": dict(sorted(profile["capabilities"].items(), key=lambda kv: -kv[1])),
        "techniques": techniques,
        "indicators": profile["indicators"],
        "pivots": sorted(pivots, key=lambda p: p["released_at"]),
        **_reasons(campaign_reasons(c, policy)),
        "owners": c.owners,
        "template_share": round(c.template_share, 4),
        "created_in_batches": profile.get("created_in_batches"),
        "sample_prompts": profile.get("sample_prompts", []),
    }


def build_findings(verdicts: list[AccountVerdict], campaigns: list[CampaignVerdict],
                   profiles: dict[str, dict[str, Any]], input_summary: dict[str, Any],
                   policy: Policy, *, generated_at: datetime | None = None) -> dict[str, Any]:
    generated = generated_at or datetime.now(UTC)
    return {
        "format": FINDINGS_FORMAT,
        "generated_at": iso(generated),
        "input": {k: iso(v) for k, v in input_summary.items()},
        "accounts": [_account(v, policy) for v in verdicts],
        "campaigns": [_campaign(c, profiles[c.campaign_id], policy) for c in campaigns],
    }
