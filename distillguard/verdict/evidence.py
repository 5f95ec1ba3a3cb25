"""What the verdict knows about an account: measured figures, engine-free."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from distillguard.verdict.confidence import wilson_lower_bound

if TYPE_CHECKING:
    from distillguard.verdict.partner_intel import PartnerCampaign, PartnerMatch

__all__ = ["TECHNIQUES", "AccountEvidence"]

TECHNIQUES = ("cot_elicitation", "grading", "data_generation", "safe_rewrite", "tool_use")


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
    campaign_affinity: float = 0.0
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
