"""What the verdict knows about an account: measured figures, engine-free.

``ACCOUNT_EVIDENCE_SQL`` joins the per-account tables of ``behavior`` and
``linkage`` into one row per account, and ``account_evidence`` reads its
columns by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

import pyarrow as pa

from distillguard.signals.lexicon import TECHNIQUES
from distillguard.verdict.confidence import wilson_lower_bound

if TYPE_CHECKING:
    from distillguard.verdict.partner_intel import PartnerCampaign, PartnerMatch

__all__ = ["ACCOUNT_EVIDENCE_SQL", "AccountEvidence", "account_evidence",
           "set_campaign_template_shares"]

# One row per account, over account_behavior (every account), account_content
# (its sample's technique shares) and account_template (its shared-template share).
ACCOUNT_EVIDENCE_SQL = f"""
SELECT b.account_id, coalesce(b.org_id, b.payment_fingerprint, b.account_id) AS owner,
       b.exchanges, b.first_seen, b.last_seen, b.hours_active,
       coalesce(c.sampled, 0) AS sampled, coalesce(t.template_share, 0) AS template_share,
       {"".join(f"coalesce(c.{t}, 0) AS {t}, " for t in TECHNIQUES)}
       coalesce(c.any_technique, 0) AS any_technique, coalesce(c.multi_turn, 0) AS multi_turn,
       b.payment_fingerprint, b.main_ip, b.main_asn, b.main_client_fingerprint,
       b.account_tier, b.verified, b.account_created
FROM account_behavior b
LEFT JOIN account_content c USING (account_id)
LEFT JOIN account_template t USING (account_id)
ORDER BY b.account_id
"""


@dataclass
class AccountEvidence:
    """One account's behavior (all exchanges) and content (its sample)."""

    account_id: str
    owner: str
    exchanges: int
    first_seen: datetime
    last_seen: datetime
    hours_active: int
    sampled: int
    template_share: float
    technique_shares: dict[str, float]
    any_technique: float
    multi_turn: float
    capabilities: dict[str, float] = field(default_factory=dict)
    payment_fingerprint: str | None = None
    main_ip: str | None = None
    main_asn: int | None = None
    main_client_fingerprint: str | None = None
    account_tier: str | None = None
    verified: bool = False
    account_created: datetime | None = None
    campaign_affinity: float = 0.0
    # cosine of its behavior views with the rest of its community (``linkage.behavior_views``)
    behavior_affinity: float = 0.0
    behavior_parts: dict[str, float] = field(default_factory=dict)   # by view, sums to it
    campaign_template_share: float = 0.0
    # indicators received from partners (``verdict.partner_intel``)
    partner_template_share: float = 0.0
    partner_campaign: PartnerCampaign | None = None
    partner_matches: list[PartnerMatch] = field(default_factory=list)

    @property
    def template_share_low(self) -> float:
        """Lower 95% bound of ``template_share`` given the sample size."""
        return wilson_lower_bound(self.template_share, self.sampled)

    @property
    def campaign_template_share_low(self) -> float:
        """Lower 95% bound of ``campaign_template_share`` given the sample size."""
        return wilson_lower_bound(self.campaign_template_share, self.sampled)

    @property
    def sampled_all(self) -> bool:
        return self.sampled >= self.exchanges


def account_evidence(rows: pa.Table) -> list[AccountEvidence]:
    """One ``AccountEvidence`` per row of ``ACCOUNT_EVIDENCE_SQL``'s result, in its order.

    >>> from datetime import datetime
    >>> t = datetime(2026, 3, 1)
    >>> row = {"account_id": "a", "owner": "org-1", "exchanges": 40, "first_seen": t,
    ...        "last_seen": t, "hours_active": 3, "sampled": 40, "template_share": 0.5,
    ...        **dict.fromkeys(TECHNIQUES, 0.25), "any_technique": 0.25, "multi_turn": 0.0,
    ...        "payment_fingerprint": None, "main_ip": "198.51.100.1", "main_asn": 64500,
    ...        "main_client_fingerprint": None, "account_tier": "free", "verified": None}
    >>> e = account_evidence(pa.Table.from_pylist([row]))[0]
    >>> e.owner, e.technique_shares[TECHNIQUES[0]], e.verified, e.sampled_all
    ('org-1', 0.25, False, True)
    """
    return [AccountEvidence(
        account_id=r["account_id"], owner=r["owner"], exchanges=r["exchanges"],
        first_seen=r["first_seen"], last_seen=r["last_seen"], hours_active=r["hours_active"],
        sampled=r["sampled"], template_share=float(r["template_share"]),
        technique_shares={t: float(r[t]) for t in TECHNIQUES},
        any_technique=float(r["any_technique"]), multi_turn=float(r["multi_turn"]),
        payment_fingerprint=r["payment_fingerprint"], main_ip=r["main_ip"],
        main_asn=r["main_asn"], main_client_fingerprint=r["main_client_fingerprint"],
        account_tier=r["account_tier"], verified=bool(r["verified"]),
        account_created=r.get("account_created"))
        for r in rows.to_pylist()]


def set_campaign_template_shares(evidence: list[AccountEvidence],
                                 requests: dict[str, int]) -> None:
    """Set each account's ``campaign_template_share`` from its count of sampled requests
    carrying templates characteristic of campaigns (``ACCOUNT_CAMPAIGN_TEMPLATE_SQL``)."""
    for e in evidence:
        e.campaign_template_share = requests.get(e.account_id, 0) / max(e.sampled, 1)
