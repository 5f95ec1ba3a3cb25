"""How one actor (a campaign's operator) and the legitimate accounts fare in findings."""

from __future__ import annotations

from typing import Any

__all__ = ["actor_listing"]


def actor_listing(findings: dict[str, Any], labels: dict[str, str | None], actor: str, *,
                  min_accounts: int = 3) -> dict[str, Any]:
    """The actor's accounts listed (and as ``extraction``), legitimate accounts listed (and
    as ``extraction``), and ``found``: one campaign holds at least ``min_accounts`` of the
    actor's accounts (operators sending the same public pipelines may share a campaign)."""
    listed = {a["account_id"]: a["verdict"] for a in findings["accounts"]}
    mine = [a for a in listed if labels.get(a) == actor]
    return {
        "found": any(sum(labels.get(a) == actor for a in c["accounts"]) >= min_accounts
                     for c in findings["campaigns"]),
        "extraction": sum(listed[a] == "extraction" for a in mine),
        "listed": len(mine),
        "legit_extraction": sum(v == "extraction" for a, v in listed.items()
                                if labels.get(a) is None),
        "legit_listed": sum(labels.get(a) is None for a in listed),
    }
