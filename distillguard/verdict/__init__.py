"""Scores, campaigns, pivots and plain-word reasons: findings.json."""

from distillguard.verdict.campaigns import AccountVerdict, CampaignVerdict, judge
from distillguard.verdict.evidence import TECHNIQUES, AccountEvidence
from distillguard.verdict.findings import FINDINGS_FORMAT, build_findings
from distillguard.verdict.partner_intel import (
    INTEL_KINDS,
    IntelMatches,
    PartnerCampaign,
    PartnerIndicator,
    PartnerMatch,
    PartnerTemplateUse,
    corroborate,
)
from distillguard.verdict.policy import Policy, load_policy
from distillguard.verdict.report import findings_markdown

__all__ = [
    "FINDINGS_FORMAT",
    "INTEL_KINDS",
    "TECHNIQUES",
    "AccountEvidence",
    "AccountVerdict",
    "CampaignVerdict",
    "IntelMatches",
    "PartnerCampaign",
    "PartnerIndicator",
    "PartnerMatch",
    "PartnerTemplateUse",
    "Policy",
    "build_findings",
    "corroborate",
    "findings_markdown",
    "judge",
    "load_policy",
]
