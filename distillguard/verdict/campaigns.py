"""Communities of the account graph judged as wholes: campaigns, scores, verdicts.

A community is a campaign when several owners share it, enough of them are
tied to each other by how they are run (timing, creation, payment, IP: not
only by tier or client, which strangers of one kind share), and most of its
traffic carries the templates characteristic of linked accounts. An account
in a campaign with enough of that traffic of its own (lower confidence bound)
is ``extraction``; one with less is ``review``. Accounts outside campaigns are
not listed: templates and techniques alone are what eval teams, tutoring apps
and graders send every day. Scores are in [0, 1] and only order findings: the
verdict comes from the thresholds of the policy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from distillguard.linkage import OPERATOR_VIEWS
from distillguard.verdict.evidence import AccountEvidence
from distillguard.verdict.partner_intel import partner_attributed
from distillguard.verdict.policy import Policy

__all__ = [
    "AccountVerdict",
    "CampaignVerdict",
    "by_operator",
    "campaign_communities",
    "enough_own_evidence",
    "judge",
    "operator_affinity",
    "operator_owners",
    "tied_to_operator",
]


@dataclass
class CampaignVerdict:
    campaign_id: str
    members: list[AccountEvidence]
    owners: int
    template_share: float
    technique_shares: dict[str, float]
    technique_share: float
    score: float


@dataclass
class AccountVerdict:
    evidence: AccountEvidence
    verdict: str
    score: float
    campaign: CampaignVerdict | None


def _weighted(members: list[AccountEvidence], values: list[float]) -> float:
    weights = np.array([m.sampled for m in members], dtype=float)
    return float(np.dot(weights, values) / weights.sum()) if weights.sum() else 0.0


def operator_affinity(e: AccountEvidence) -> float:
    """The account's agreement with its community's other owners in the operator views
    (timing, creation, payment, IP): its behavior parts that say who runs it."""
    return sum(e.behavior_parts.get(view, 0.0) for view in OPERATOR_VIEWS)


def tied_to_operator(e: AccountEvidence, policy: Policy) -> bool:
    """Whether the account agrees with its community's other owners in the operator views
    at least ``campaign.min_operator_affinity`` (always, when the policy weighs none of
    those views), or a partner ties it to one of its campaigns by templates and
    infrastructure together (``partner_attributed``)."""
    weighed = any(policy.graph.behavior_weights.get(v, 0.0) > 0 for v in OPERATOR_VIEWS)
    return (not weighed or operator_affinity(e) >= policy.campaign_min_operator_affinity
            or partner_attributed(e))


def operator_owners(members: list[AccountEvidence], policy: Policy) -> int:
    """How many owners of a community have an account tied to the others by the
    operator views (``tied_to_operator``)."""
    return len({m.owner for m in members if tied_to_operator(m, policy)})


def _enough_owners(members: list[AccountEvidence], policy: Policy) -> bool:
    """``campaign.min_owners`` owners, that many of them tied by the operator views."""
    return (len({m.owner for m in members}) >= policy.campaign_min_owners
            and operator_owners(members, policy) >= policy.campaign_min_owners)


def _campaign(members: list[AccountEvidence], policy: Policy) -> CampaignVerdict:
    owners = len({m.owner for m in members})
    template = _weighted(members, [m.campaign_template_share for m in members])
    techniques = {t: _weighted(members, [m.technique_shares.get(t, 0.0) for m in members])
                  for t in members[0].technique_shares}
    any_technique = _weighted(members, [m.any_technique for m in members])
    breadth = min(1.0, math.log(max(owners, 1)) / math.log(policy.campaign_owner_saturation))
    score = round(template * (0.5 + 0.5 * breadth), 6)
    return CampaignVerdict("", members, owners, template, techniques, any_technique, score)


def campaign_communities(evidence: list[AccountEvidence], community: dict[str, int],
                         policy: Policy) -> set[int]:
    """Communities that look like campaigns on their shared-template traffic alone.

    Their accounts define which template units are characteristic of campaigns
    (see ``linkage.template_sql.COMMUNITY_UNITS_SQL``); ``judge`` then decides
    on those units only.
    """
    groups: dict[int, list[AccountEvidence]] = {}
    by_id = {e.account_id: e for e in evidence}
    for account_id, number in community.items():
        groups.setdefault(number, []).append(by_id[account_id])
    return {number for number, members in groups.items()
            if _enough_owners(members, policy)
            and _weighted(members, [m.template_share for m in members])
            >= policy.campaign_min_template_share}


def enough_own_evidence(e: AccountEvidence, policy: Policy) -> bool:
    """Whether the account's own traffic and behavior are enough to act on: enough of its
    own sampled requests, and behavior that agrees with its campaign's other owners (when
    the policy weighs behavior), in the operator views too (an account of a campaign
    that shares only a tier and a client with it may be a customer that sends the same
    public prompts), or a partner that lists the templates it sends for one campaign
    (the partner's attribution stands in for the behavior the scan could not link)."""
    behavior_ok = (not policy.graph.behavior_weights
                   or (e.behavior_affinity >= behavior_affinity_needed(e, policy)
                       and tied_to_operator(e, policy))
                   or partner_attributed(e))
    return e.sampled >= policy.extraction_min_sampled_requests and behavior_ok


def content_agrees(e: AccountEvidence, policy: Policy) -> bool:
    """Whether the account's own template use agrees with its campaign's
    (``campaign_affinity`` at least ``extraction_min_content_affinity``): a second piece
    of evidence of its own, so it needs less behavior (``behavior_affinity_needed``). In
    a campaign that holds several operators the affinity with the other owners is
    diluted by the others' behavior; an evaluation team running only public judge
    prompts inside it agrees little with the campaign's template mix."""
    return e.campaign_affinity >= policy.extraction_min_content_affinity


def behavior_affinity_needed(e: AccountEvidence, policy: Policy) -> float:
    """The behavior affinity ``extraction`` needs of the account."""
    return (policy.extraction_min_behavior_affinity_content_agrees if content_agrees(e, policy)
            else policy.extraction_min_behavior_affinity)


def _strong(e: AccountEvidence, policy: Policy) -> bool:
    """Enough of the campaign's templates and enough evidence of its own for ``extraction``."""
    return (e.campaign_template_share_low >= policy.extraction_min_campaign_template_share
            and enough_own_evidence(e, policy))


def by_operator(members: list[AccountEvidence], operators: dict[str, int]
                ) -> dict[int, list[AccountEvidence]]:
    """The members of one campaign community by the operator that runs them
    (``linkage.operators``); a member without one (linked by a partner's indicators
    only) goes with the largest group (-1 when no member has one)."""
    groups: dict[int, list[AccountEvidence]] = {}
    unknown = []
    for m in members:
        if m.account_id in operators:
            groups.setdefault(operators[m.account_id], []).append(m)
        else:
            unknown.append(m)
    if not groups:
        return {-1: members}
    max(groups.values(), key=len).extend(unknown)
    return groups


def judge(evidence: list[AccountEvidence], community: dict[str, tuple[int, float]],
          policy: Policy, operators: dict[str, int] | None = None
          ) -> tuple[list[AccountVerdict], list[CampaignVerdict]]:
    """Verdicts for accounts worth listing, and the campaigns they form.

    ``community`` maps candidate accounts to their community number and their
    affinity with it (cosine with the rest of the community's template use). A
    community is judged whole; with ``operators`` (an operator number per account,
    ``linkage.operators``) each operator's part of it is one campaign.
    """
    groups: dict[int, list[AccountEvidence]] = {}
    by_id = {e.account_id: e for e in evidence}
    for account_id, (number, affinity) in community.items():
        e = by_id[account_id]
        e.campaign_affinity = affinity
        # Linked only through popular prompts that ordinary users send as well:
        # none of its traffic is what campaigns ask for, so it is no member.
        if e.campaign_template_share > 0:
            groups.setdefault(number, []).append(e)
    strong = {e.account_id: _strong(e, policy) for members in groups.values() for e in members}
    campaigns: list[CampaignVerdict] = []
    unattributed: list[CampaignVerdict] = []
    # One operator's accounts may sit in several campaign communities (its pathways ask
    # for different pipelines' templates): its parts of all of them are one campaign.
    by_number: dict[tuple[int, int], list[AccountEvidence]] = {}
    for number, members in groups.items():
        candidate = _campaign(members, policy)
        if not (_enough_owners(members, policy)
                and candidate.template_share >= policy.campaign_min_template_share
                and candidate.technique_share >= policy.campaign_min_technique_share):
            continue
        if not operators:
            campaigns.append(candidate)
            continue
        for operator, part in by_operator(members, operators).items():
            key = (operator, number) if operator < 0 else (operator, -1)
            by_number.setdefault(key, []).extend(part)
    for part in (_campaign(p, policy) for p in by_number.values()):
        # An operator's part without one account to act on, or of fewer owners than a
        # campaign needs (an evaluation team sending the pipelines' public prompts,
        # whose community held campaign accounts of other owners), is no campaign: its
        # accounts are listed for review, in no campaign.
        if (part.owners >= policy.campaign_min_owners
                and any(strong[m.account_id] for m in part.members)):
            campaigns.append(part)
        else:
            unattributed.append(part)
    campaigns.sort(key=lambda c: (-c.score, -sum(m.exchanges for m in c.members)))
    for i, c in enumerate(campaigns, start=1):
        c.campaign_id = f"C{i}"
    verdicts: list[AccountVerdict] = []
    for c in campaigns + unattributed:
        for e in c.members:
            own = min(1.0, e.campaign_template_share
                      / max(policy.extraction_min_campaign_template_share, 1e-9))
            verdicts.append(AccountVerdict(
                e, "extraction" if strong[e.account_id] and c.campaign_id else "review",
                round(c.score * own, 6), c if c.campaign_id else None))
    verdicts.sort(key=lambda v: (-v.score, v.evidence.account_id))
    return verdicts, campaigns
