"""Findings measured against ground-truth labels (simulated traffic only).

Reports what the issue's bars are stated in: account precision and recall
(``extraction``, and ``extraction`` + ``review``), the false-positive rate
among legitimate accounts overall and per legitimate archetype, recall per
campaign actor, exchange-weighted recall, and how each actor's flagged
accounts spread over campaign groups (fragmentation) and how pure each
group is.

Attribution is scored twice. *Campaign purity* is, for every campaign the scan
found, the share of its exchanges sent by its majority operator (legitimate
accounts inside a campaign never count as the majority), averaged over
campaigns weighted by their exchanges: two operators merged into one campaign
pull it down. Per operator, *largest campaign share* is the share of all its
accounts that sit in the one campaign holding most of them: an operator split
over several campaigns, or missed, pulls it down.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

__all__ = ["campaign_purity", "evaluate_findings", "largest_campaign_share"]


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 6) if b else None


def evaluate_findings(findings: dict[str, Any], labels: dict[str, str | None], *,
                      archetypes: dict[str, str] | None = None,
                      exchanges: dict[str, int] | None = None) -> dict[str, Any]:
    """Score ``findings`` against ``labels`` (account -> actor, None for legitimate).

    ``archetypes`` (account -> legitimate archetype) adds per-archetype false
    positives; ``exchanges`` (account -> exchange count) adds exchange-weighted
    recall.
    """
    verdict = {a["account_id"]: a["verdict"] for a in findings["accounts"]}
    group = {a["account_id"]: a.get("campaign_id") for a in findings["accounts"]}
    attackers = {a for a, actor in labels.items() if actor}
    legit = {a for a, actor in labels.items() if not actor}
    out: dict[str, Any] = {"accounts": len(labels), "campaign_accounts": len(attackers),
                           "legitimate_accounts": len(legit)}
    for name, levels in (("extraction", {"extraction"}),
                         ("extraction_or_review", {"extraction", "review"})):
        flagged = {a for a, v in verdict.items() if v in levels}
        tp = len(flagged & attackers)
        fp = len(flagged & legit)
        out[name] = {
            "flagged": len(flagged), "true_positives": tp, "false_positives": fp,
            "precision": _ratio(tp, tp + fp), "recall": _ratio(tp, len(attackers)),
            "legit_false_positive_rate": _ratio(fp, len(legit)),
        }
        if exchanges is not None:
            total = sum(exchanges.get(a, 0) for a in attackers)
            covered = sum(exchanges.get(a, 0) for a in attackers & flagged)
            out[name]["exchange_recall"] = _ratio(covered, total)
        if archetypes is not None:
            per: dict[str, Counter[str]] = defaultdict(Counter)
            for a in legit:
                kind = archetypes.get(a, "unknown")
                per[kind]["accounts"] += 1
                per[kind]["flagged"] += a in flagged
            out[name]["legit_by_archetype"] = {
                k: {"accounts": c["accounts"], "flagged": c["flagged"],
                    "rate": _ratio(c["flagged"], c["accounts"])} for k, c in sorted(per.items())}
    actors: dict[str, Any] = {}
    by_actor: dict[str, list[str]] = defaultdict(list)
    for a, x in labels.items():
        if x:
            by_actor[x].append(a)
    for actor, members in sorted(by_actor.items()):
        flagged = [a for a in members if verdict.get(a) == "extraction"]
        either = [a for a in members if a in verdict]
        groups = Counter(group[a] for a in either if group.get(a))
        largest = groups.most_common(1)[0][1] if groups else 0
        actors[actor] = {
            "accounts": len(members), "extraction": len(flagged), "extraction_or_review":
            len(either), "recall": _ratio(len(flagged), len(members)),
            "groups": len(groups), "largest_group_share": _ratio(largest, len(either)),
            **largest_campaign_share(members, group),
        }
    out["actors"] = actors
    purity = {}
    for gid in sorted({g for g in group.values() if g}):
        members = [a for a, g in group.items() if g == gid]
        counts = Counter(labels.get(a) or "legitimate" for a in members)
        top, n = counts.most_common(1)[0]
        purity[gid] = {"accounts": len(members), "majority": top,
                       "purity": _ratio(n, len(members)), "mix": dict(counts)}
    out["campaign_groups"] = purity
    weighting = "exchanges" if exchanges is not None else "accounts"
    out["campaign_purity"] = {"weighting": weighting,
                              **campaign_purity(group, labels, _weights(labels, exchanges))}
    return out


def _weights(labels: dict[str, str | None], exchanges: dict[str, int] | None
             ) -> dict[str, int]:
    if exchanges is None:
        return dict.fromkeys(labels, 1)
    return exchanges


def campaign_purity(group: dict[str, str | None], labels: dict[str, str | None],
                    weights: dict[str, int]) -> dict[str, Any]:
    """Exchange-weighted share of each campaign's majority operator, and its mean.

    ``group`` maps accounts to the campaign the scan put them in (None: none);
    ``weights`` maps accounts to their exchanges (accounts it lacks weigh 1).
    Legitimate accounts count against the campaign, never as its majority.
    """
    by_campaign: dict[str, Counter[str | None]] = defaultdict(Counter)
    for account, gid in group.items():
        if gid:
            by_campaign[gid][labels.get(account)] += weights.get(account, 1)
    campaigns = {}
    majority_total = total = 0
    for gid in sorted(by_campaign):
        sent = by_campaign[gid]
        operators = [(n, actor) for actor, n in sent.items() if actor]
        n_major, major = max(operators) if operators else (0, None)
        n_all = sum(sent.values())
        campaigns[gid] = {"operator": major, "exchanges": n_all,
                          "purity": _ratio(n_major, n_all)}
        majority_total += n_major
        total += n_all
    return {"purity": _ratio(majority_total, total), "campaigns": campaigns}


def largest_campaign_share(members: list[str], group: dict[str, str | None]
                           ) -> dict[str, Any]:
    """The campaign holding most of one operator's accounts (``members``; on a tie, the
    greatest campaign id), and their share of all of them."""
    counts = Counter(group[a] for a in members if group.get(a))
    n, largest = max(((n, gid) for gid, n in counts.items()), default=(0, None))
    return {"largest_campaign": largest, "largest_campaign_share": _ratio(n, len(members))}
