"""Findings measured against ground-truth labels (simulated traffic only).

Reports what the issue's bars are stated in: account precision and recall
(``extraction``, and ``extraction`` + ``review``), the false-positive rate
among legitimate accounts overall and per legitimate archetype, recall per
campaign actor, exchange-weighted recall, and how each actor's flagged
accounts spread over campaign groups (fragmentation) and how pure each
group is.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

__all__ = ["evaluate_findings"]


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
    for actor in sorted({x for x in labels.values() if x}):
        members = [a for a, x in labels.items() if x == actor]
        flagged = [a for a in members if verdict.get(a) == "extraction"]
        either = [a for a in members if a in verdict]
        groups = Counter(group[a] for a in either if group.get(a))
        largest = groups.most_common(1)[0][1] if groups else 0
        actors[actor] = {
            "accounts": len(members), "extraction": len(flagged), "extraction_or_review":
            len(either), "recall": _ratio(len(flagged), len(members)),
            "groups": len(groups), "largest_group_share": _ratio(largest, len(either)),
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
    return out
