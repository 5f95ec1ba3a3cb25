"""Campaign profiles: span, capabilities, indicators, pivots and sample prompts.

Pure functions over the small results of ``verdict.campaign_sql`` (which the
scan runs over ``campaign_members_table``), so each can be checked on a few
rows. How much a profile lists is policy (``profile.*`` in ``policy.yaml``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from distillguard.verdict.campaigns import CampaignVerdict
from distillguard.verdict.policy import Policy

__all__ = [
    "INDICATOR_KINDS",
    "ProfileRows",
    "add_sample_prompts",
    "campaign_members_table",
    "campaign_of",
    "campaign_profiles",
    "pick_sample_prompts",
    "prompt_text",
]

INDICATOR_KINDS = ("ips", "asns", "payment_fingerprints", "client_fingerprints", "templates")
_MASK64 = (1 << 64) - 1

Rows = Iterable[tuple[Any, ...]]


@dataclass(frozen=True)
class ProfileRows:
    """The campaign queries' results, one field per query of ``campaign_sql``."""

    spans: Rows  # CAMPAIGN_SPAN_SQL: campaign_id, exchanges, first_seen, last_seen
    capabilities: Rows  # CAMPAIGN_CAPABILITIES_SQL: campaign_id, capability, n
    indicators: Rows  # CAMPAIGN_INDICATORS_SQL: campaign_id, kind, value, accounts
    template_uses: Rows  # CAMPAIGN_TEMPLATE_USES_SQL: campaign_id, unit, uses
    creation_batches: Rows  # CAMPAIGN_CREATION_BATCHES_SQL: campaign_id, with_created, in_batches
    baseline_pivots: Rows  # BASELINE_PIVOTS_SQL: model, window_exchanges, window_new_model
    pivots: Rows  # CAMPAIGN_PIVOTS_SQL: campaign_id, model, released_at, window_exchanges, new


def campaign_of(campaigns: list[CampaignVerdict]) -> dict[str, str]:
    """Each member account's campaign id."""
    return {m.account_id: c.campaign_id for c in campaigns for m in c.members}


def campaign_members_table(campaigns: list[CampaignVerdict]) -> pa.Table:
    """``account_id, campaign_id`` of every member: the table ``campaign_sql`` reads."""
    members = campaign_of(campaigns)
    return pa.table({"account_id": pa.array(list(members), pa.string()),
                     "campaign_id": pa.array(list(members.values()), pa.string())})


def campaign_profiles(campaigns: list[CampaignVerdict], rows: ProfileRows,
                      policy: Policy) -> dict[str, dict[str, Any]]:
    """Each campaign's profile (findings' campaign fields other than the verdict's own).

    Indicators keep at most ``profile.max_indicators`` values per kind, most
    shared first; templates the ``profile.max_templates`` units the campaign
    uses most.
    """
    profiles: dict[str, dict[str, Any]] = {
        c.campaign_id: {"capabilities": {}, "indicators": {kind: [] for kind in INDICATOR_KINDS},
                        "pivots": []} for c in campaigns}
    for cid, exchanges, first, last in rows.spans:
        profiles[cid].update(exchanges=int(exchanges), first_seen=first, last_seen=last)
    capabilities = list(rows.capabilities)
    totals: Counter[str] = Counter()
    for cid, _cap, n in capabilities:
        totals[cid] += n
    for cid, cap, n in capabilities:
        profiles[cid]["capabilities"][cap] = round(n / totals[cid], 4)
    for cid, kind, value, _n in rows.indicators:
        bucket = profiles[cid]["indicators"][kind]
        if len(bucket) < policy.profile_max_indicators:
            bucket.append(int(value) if kind == "asns" else value)
    unit_uses: dict[str, Counter[int]] = {c.campaign_id: Counter() for c in campaigns}
    for cid, unit, uses in rows.template_uses:
        if cid in unit_uses:
            unit_uses[cid][int(unit)] += uses
    for cid, counter in unit_uses.items():
        most_used = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))
        profiles[cid]["indicators"]["templates"] = [
            f"unit:{unit & _MASK64:016x}" for unit, _ in most_used[:policy.profile_max_templates]]
    for cid, with_created, in_batches in rows.creation_batches:
        profiles[cid]["created_in_batches"] = {"accounts_with_creation_time": int(with_created),
                                               "created_within_10_min_of_another": int(in_batches)}
    baseline = {m: (n, k) for m, n, k in rows.baseline_pivots}
    for cid, model, released, n, k in rows.pivots:
        base_n, base_k = baseline.get(model, (0, 0))
        profiles[cid]["pivots"].append({
            "model": model, "released_at": released,
            "share_within_24h": round(k / n, 4) if n else 0.0,
            "exchanges_within_24h": int(n),
            "baseline_share_within_24h": round(base_k / base_n, 4) if base_n else None,
        })
    return profiles


def pick_sample_prompts(rows: Rows, campaigns: list[CampaignVerdict], per_campaign: int,
                        ) -> tuple[dict[str, list[str]], list[tuple[str, Any]]]:
    """Up to ``per_campaign`` requests per campaign carrying its templates, each from a
    different account, from ``CAMPAIGN_SAMPLE_PROMPTS_SQL`` rows (account_id,
    request_id, ts). Returns the request ids per campaign and the (request_id, ts)
    picks to look up.

    >>> from distillguard.verdict.campaigns import CampaignVerdict
    >>> from distillguard.verdict.evidence import AccountEvidence
    >>> def member(a): return AccountEvidence(a, a, 1, None, None, 0, 1, 1.0, {}, 0.0, 0.0)
    >>> c = CampaignVerdict("C1", [member("a"), member("b")], 2, 1.0, {}, 1.0, 1.0)
    >>> chosen, picks = pick_sample_prompts([("a", "r1", 1), ("a", "r2", 2), ("b", "r3", 3),
    ...                                      ("x", "r4", 4)], [c], 3)
    >>> chosen
    {'C1': ['r1', 'r3']}
    """
    members = campaign_of(campaigns)
    chosen: dict[str, list[str]] = {c.campaign_id: [] for c in campaigns}
    picks: list[tuple[str, Any]] = []
    seen: set[str] = set()
    for account_id, request_id, ts in rows:
        cid = members.get(account_id)
        if cid and account_id not in seen and len(chosen[cid]) < per_campaign:
            chosen[cid].append(request_id)
            picks.append((request_id, ts))
            seen.add(account_id)
    return chosen, picks


def add_sample_prompts(profiles: dict[str, dict[str, Any]], chosen: dict[str, list[str]],
                       exchanges: Rows, max_chars: int) -> None:
    """Set each profile's ``sample_prompts``: the chosen requests' texts (``exchanges``:
    request_id, system, messages), cut at ``max_chars``."""
    texts = {request_id: prompt_text(system, messages)
             for request_id, system, messages in exchanges}
    for cid, request_ids in chosen.items():
        profiles[cid]["sample_prompts"] = [texts[r][:max_chars] for r in request_ids
                                           if texts.get(r)]


def prompt_text(system: str | None, messages: list[Any]) -> str | None:
    """System prompt and new turn, as an analyst reads the request.

    >>> prompt_text("Be terse.", [{"role": "user", "content": "hi"}])
    'Be terse.\\nhi'
    """
    if not messages:
        return None
    last = messages[-1]
    content = last["content"] if isinstance(last, dict) else last.content
    if content is None:
        return None
    return (f"{system}\n" if system is not None else "") + content
