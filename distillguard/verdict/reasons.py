"""Reasons in plain words, each naming figures an analyst can check in the raw exchanges,
and the policy rules behind it (their ids are the keys of ``policy.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass

from distillguard.signals.lexicon import load_lexicon
from distillguard.verdict.campaigns import (
    AccountVerdict,
    CampaignVerdict,
    behavior_affinity_needed,
    content_agrees,
    operator_affinity,
)
from distillguard.verdict.evidence import AccountEvidence
from distillguard.verdict.partner_intel import partner_campaign_reasons, partner_reasons
from distillguard.verdict.policy import Policy, rule_ids

__all__ = ["Reason", "account_reasons", "campaign_reasons", "rules_fired"]

# What makes a text unit a shared template, and a community a campaign.
_TEMPLATE_RULES = rule_ids("template_min_owners", "template_min_texts",
                           "template_min_repeats_per_owner", "template_min_fresh_share")
_CAMPAIGN_RULES = rule_ids("candidate_min_template_requests", "campaign_min_owners",
                           "campaign_min_template_share", "campaign_min_technique_share")


@dataclass(frozen=True)
class Reason:
    """One sentence of a finding and the ids of the policy rules it rests on."""

    text: str
    rules: tuple[str, ...] = ()


def rules_fired(reasons: list[Reason]) -> list[str]:
    """The rule ids of ``reasons``, each once, in order of first mention.

    >>> rules_fired([Reason("a", ("x.y", "x.z")), Reason("b"), Reason("c", ("x.z", "w.v"))])
    ['x.y', 'x.z', 'w.v']
    """
    return list(dict.fromkeys(rule for reason in reasons for rule in reason.rules))


def _sample_words(e: AccountEvidence) -> str:
    if e.sampled_all:
        return f"{e.sampled:,} requests"
    return f"a sample of {e.sampled:,} of its {e.exchanges:,} requests"


def _attribution_reason(campaign_id: str | None, policy: Policy) -> tuple[str, tuple[str, ...]]:
    """How the accounts of campaign ``campaign_id`` were told from other operators'."""
    attribution = policy.attribution
    text = (f"attributed to the operator of campaign {campaign_id}: of the accounts linked "
            "with it, those whose pools agree in timing, creation, model routing, tiers, "
            "networks, clients, payment and IP across pools at least "
            f"{attribution.min_agreement_ratio:.2f} of how much each pool agrees inside")
    rules = ["attribution.min_agreement_ratio"]
    if attribution.veto_min_ratio:
        text += ("; never joining pools that differ in: " + ", ".join(
            _VIEW_WORDS.get(v, v) for v in attribution.veto_min_ratio))
        rules.append("attribution.veto_min_ratio")
    if attribution.support_min_ratio:
        text += ("; always joining pools alike in all of: " + ", ".join(
            _VIEW_WORDS.get(v, v) for v in attribution.support_min_ratio))
        rules.append("attribution.support_min_ratio")
    return text, tuple(rules)


def _technique_reasons(shares: dict[str, float], policy: Policy) -> list[Reason]:
    words = load_lexicon().technique_reasons
    return [Reason(f"{share:.0%} of sampled requests {words[technique]}",
                   rule_ids("technique_min_share"))
            for technique, share in sorted(shares.items(), key=lambda kv: -kv[1])
            if share >= policy.technique_min_share]


_VIEW_WORDS = {"waves": "requests in the same minutes", "days": "active in the same hours",
               "creation": "opened in the same batches",
               "models": "the same share of requests to each new model", "tier": "tier", "network": "network",
               "client": "client", "payment": "payment method", "ip": "IP"}


def _content_words(e: AccountEvidence, policy: Policy) -> str:
    """Which behavior floor applied, and why: the account's template agreement with its
    campaign against ``extraction_min_content_affinity``."""
    floor, bar = (policy.extraction_min_behavior_affinity_content_agrees,
                  policy.extraction_min_content_affinity)
    if content_agrees(e, policy):
        return (f" as its template use agrees with the campaign's at {e.campaign_affinity:.2f}, "
                f"at least {bar:.2f}; {policy.extraction_min_behavior_affinity:.2f} otherwise")
    return (f"; {floor:.2f} if its template use agreed with the campaign's at {bar:.2f} or "
            f"more: {e.campaign_affinity:.2f}")


def _evidence_reasons(v: AccountVerdict, policy: Policy) -> list[Reason]:
    """What the account's own traffic and behavior contribute, each part visible."""
    e = v.evidence
    out = [Reason(f"{e.sampled:,} of its own requests sampled (`extraction` needs at least "
                  f"{policy.extraction_min_sampled_requests:,})",
                  rule_ids("extraction_min_sampled_requests"))]
    if policy.graph.behavior_weights:
        # by the figure as shown, then by name: engines agree to 1e-6, not bit for bit
        parts = sorted(e.behavior_parts.items(), key=lambda kv: (-round(kv[1], 2), kv[0]))
        words = ", ".join(f"{_VIEW_WORDS.get(view, view)} {part:.2f}"
                          for view, part in parts if part >= 0.005) or "none"
        out.append(Reason(
            "its behavior agrees with the accounts of the other owners in the community of "
            f"campaign {v.campaign.campaign_id if v.campaign else '-'} "
            f"at {e.behavior_affinity:.2f} (`extraction` needs "
            f"{behavior_affinity_needed(e, policy):.2f}{_content_words(e, policy)}), "
            f"{operator_affinity(e):.2f} of it in timing, creation, payment or IP (needs "
            f"{policy.campaign_min_operator_affinity:.2f}); parts: {words}",
            rule_ids("extraction_min_behavior_affinity", "extraction_min_content_affinity",
                     "extraction_min_behavior_affinity_content_agrees",
                     "campaign_min_operator_affinity")))
    return out


def account_reasons(v: AccountVerdict, policy: Policy) -> list[Reason]:
    e = v.evidence
    reasons = [Reason(
        f"{e.template_share:.0%} of {_sample_words(e)} are built on text templates that at "
        f"least {policy.template_min_owners} unrelated owners send with varying fill-ins",
        _TEMPLATE_RULES)]
    if v.campaign is not None:
        c = v.campaign
        verdict_rules = (rule_ids("extraction_min_campaign_template_share")
                         if v.verdict == "extraction" else ())
        reasons.append(Reason(
            f"{e.campaign_template_share:.0%} of sampled requests carry templates that hardly "
            f"anyone outside campaigns sends (at least {e.campaign_template_share_low:.0%} with "
            f"95% confidence; `extraction` needs "
            f"{policy.extraction_min_campaign_template_share:.0%})",
            rule_ids("community_unit_min_inside_share") + verdict_rules))
        reasons.append(Reason(
            f"one of {len(c.members):,} accounts ({c.owners:,} distinct owners) linked into "
            f"campaign {c.campaign_id} by the templates they share (and payment methods); "
            f"{c.template_share:.0%} of the campaign's sampled requests are shared templates",
            _CAMPAIGN_RULES))
        if policy.attribution.min_agreement_ratio > 0:
            reasons.append(Reason(*_attribution_reason(c.campaign_id, policy)))
        reasons += _evidence_reasons(v, policy)
    reasons += _technique_reasons(e.technique_shares, policy)
    if e.multi_turn < policy.reason_multi_turn_share_below:
        reasons.append(Reason(f"{1 - e.multi_turn:.0%} of requests open a new conversation "
                              "(no earlier turns)", rule_ids("reason_multi_turn_share_below")))
    if e.hours_active >= policy.reason_hours_active_at_least:
        reasons.append(Reason(f"active in {e.hours_active} of the 24 hours of the day (UTC)",
                              rule_ids("reason_hours_active_at_least")))
    return reasons + [Reason(text) for text in partner_reasons(e)]


def campaign_reasons(c: CampaignVerdict, policy: Policy) -> list[Reason]:
    exchanges = sum(m.exchanges for m in c.members)
    reasons = [
        Reason(f"{len(c.members):,} accounts of {c.owners:,} distinct owners send requests "
               f"built on the same text templates ({c.template_share:.0%} of sampled requests)",
               _CAMPAIGN_RULES),
        Reason(f"{exchanges:,} exchanges in all"),
    ]
    reasons += _technique_reasons(c.technique_shares, policy)
    payments = {m.payment_fingerprint for m in c.members if m.payment_fingerprint}
    if payments and len(payments) < len(c.members):
        reasons.append(Reason(f"{len(c.members):,} accounts pay with {len(payments):,} "
                              "payment methods"))
    return reasons + [Reason(text) for text in partner_campaign_reasons(c.members)]
