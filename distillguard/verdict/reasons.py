"""Reasons in plain words, each naming figures an analyst can check in the raw exchanges."""

from __future__ import annotations

from distillguard.verdict.campaigns import AccountVerdict, CampaignVerdict
from distillguard.verdict.evidence import AccountEvidence
from distillguard.verdict.partner_intel import partner_campaign_reasons, partner_reasons
from distillguard.verdict.policy import Policy

__all__ = ["TECHNIQUE_WORDS", "account_reasons", "campaign_reasons"]

TECHNIQUE_WORDS = {
    "cot_elicitation": "ask for the model's reasoning written out (chain-of-thought elicitation)",
    "grading": "ask the model to score, rank or compare answers (grading / judging)",
    "data_generation": "ask for new tasks, questions or prompts (training-data generation)",
    "safe_rewrite": "ask for censorship-safe rewrites of sensitive questions",
    "tool_use": "carry tools or tool-use steps (agentic trajectories)",
}


def _sample_words(e: AccountEvidence) -> str:
    if e.sampled_all:
        return f"{e.sampled:,} requests"
    return f"a sample of {e.sampled:,} of its {e.exchanges:,} requests"


def account_reasons(v: AccountVerdict, policy: Policy) -> list[str]:
    e = v.evidence
    reasons = [
        f"{e.template_share:.0%} of {_sample_words(e)} are built on text templates that at "
        f"least {policy.template_min_owners} unrelated owners send with varying fill-ins"
    ]
    if v.campaign is not None:
        c = v.campaign
        reasons.append(
            f"{e.campaign_template_share:.0%} of sampled requests carry templates that hardly "
            f"anyone outside campaigns sends (at least {e.campaign_template_share_low:.0%} with "
            f"95% confidence; `extraction` needs "
            f"{policy.extraction_min_campaign_template_share:.0%})")
        reasons.append(
            f"one of {len(c.members):,} accounts ({c.owners:,} distinct owners) linked into "
            f"campaign {c.campaign_id} by the templates they share (and payment methods); "
            f"{c.template_share:.0%} of the campaign's sampled requests are shared templates")
    for technique, share in sorted(e.technique_shares.items(), key=lambda kv: -kv[1]):
        if share >= policy.technique_min_share:
            reasons.append(f"{share:.0%} of sampled requests {TECHNIQUE_WORDS[technique]}")
    if e.multi_turn < 0.1:
        reasons.append(f"{1 - e.multi_turn:.0%} of requests open a new conversation "
                       "(no earlier turns)")
    if e.hours_active >= 20:
        reasons.append(f"active in {e.hours_active} of the 24 hours of the day (UTC)")
    return reasons + partner_reasons(e)


def campaign_reasons(c: CampaignVerdict, policy: Policy) -> list[str]:
    exchanges = sum(m.exchanges for m in c.members)
    reasons = [
        f"{len(c.members):,} accounts of {c.owners:,} distinct owners send requests built on "
        f"the same text templates ({c.template_share:.0%} of sampled requests)",
        f"{exchanges:,} exchanges in all",
    ]
    for technique, share in sorted(c.technique_shares.items(), key=lambda kv: -kv[1]):
        if share >= policy.technique_min_share:
            reasons.append(f"{share:.0%} of sampled requests {TECHNIQUE_WORDS[technique]}")
    payments = {m.payment_fingerprint for m in c.members if m.payment_fingerprint}
    if payments and len(payments) < len(c.members):
        reasons.append(f"{len(c.members):,} accounts pay with {len(payments):,} payment methods")
    return reasons + partner_campaign_reasons(c.members)
