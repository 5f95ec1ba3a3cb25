"""Scores, campaigns, pivots and plain-word reasons: findings.json."""

from distillguard.verdict.campaigns import AccountVerdict, CampaignVerdict, judge
from distillguard.verdict.decisions import (
    DECISIONS_SQL,
    Decision,
    account_snapshot,
    apply_decisions,
    campaign_snapshot,
    decisions_from_rows,
    in_force,
    match_campaigns,
    read_decisions,
)
from distillguard.verdict.evidence import (
    ACCOUNT_EVIDENCE_SQL,
    AccountEvidence,
    account_evidence,
    set_campaign_template_shares,
)
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
from distillguard.verdict.policy import Policy, load_policy, rule_ids
from distillguard.verdict.profiles import ProfileRows, campaign_members_table, campaign_profiles
from distillguard.verdict.reasons import Reason
from distillguard.verdict.report import findings_markdown

__all__ = [
    "ACCOUNT_EVIDENCE_SQL",
    "DECISIONS_SQL",
    "FINDINGS_FORMAT",
    "INTEL_KINDS",
    "AccountEvidence",
    "AccountVerdict",
    "CampaignVerdict",
    "Decision",
    "IntelMatches",
    "PartnerCampaign",
    "PartnerIndicator",
    "PartnerMatch",
    "PartnerTemplateUse",
    "Policy",
    "ProfileRows",
    "Reason",
    "account_evidence",
    "account_snapshot",
    "apply_decisions",
    "build_findings",
    "campaign_members_table",
    "campaign_profiles",
    "campaign_snapshot",
    "corroborate",
    "decisions_from_rows",
    "findings_markdown",
    "in_force",
    "judge",
    "load_policy",
    "match_campaigns",
    "read_decisions",
    "rule_ids",
    "set_campaign_template_shares",
]
