"""Indicators received from partners, as evidence in the verdict.

Partners (other labs, clouds) share what they saw of campaigns as STIX
indicators; ``intel`` reads their bundles and matches them against this
traffic. What a match may decide follows the scan's own rule that no single
signal carries:

- **Prompt-template fingerprints** are evidence about what an account *asks
  for*, the one thing an operator cannot drop. An account's sampled requests
  that carry template units a partner lists for a campaign count as campaign
  templates (``campaign_template_share`` takes the larger of the scan's own and
  the partner's share), so the policy's thresholds decide as usual: a campaign
  still needs several owners, most of its traffic on templates and techniques
  worth training on; ``extraction`` still needs the account's own share above
  the bound. An account that the scan's own linkage did not place joins only
  when its partner-template share clears that bound on its own.
- **Infrastructure** (IPs, subnets, ASNs, client and payment fingerprints) is
  shown in the reasons of accounts listed anyway and never lists an account:
  a partner's proxy exit or cloud block also carries NAT'd customers.
- **Both together** stand in for the operator ties the scan could not see yet
  (``partner_attributed``): templates alone do not, since an operator's
  campaign also sends public prompts (a published judge prompt) that unrelated
  evaluation teams here send too; nor do client fingerprints or ASes, which
  every customer of the same SDK or cloud shares.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from distillguard.verdict.confidence import wilson_lower_bound
from distillguard.verdict.evidence import AccountEvidence
from distillguard.verdict.policy import Policy

__all__ = [
    "INTEL_KINDS",
    "IntelMatches",
    "PartnerCampaign",
    "PartnerIndicator",
    "PartnerMatch",
    "PartnerTemplateUse",
    "corroborate",
    "partner_attributed",
    "partner_campaign_reasons",
    "partner_reasons",
]

# Kinds of indicator the scan matches, in the order reasons list them.
INTEL_KINDS = ("template", "payment", "client_fingerprint", "ip", "subnet", "asn")
KIND_WORDS = {"template": "prompt template", "payment": "payment fingerprint",
              "client_fingerprint": "client fingerprint", "ip": "IP", "subnet": "subnet",
              "asn": "AS"}
MAX_INFRA_REASONS = 5
# Infrastructure an operator holds: not a client fingerprint (any SDK's customers share
# it) nor an AS (a cloud's AS holds all its tenants).
OPERATOR_INFRASTRUCTURE = ("payment", "ip", "subnet")


@dataclass(frozen=True)
class PartnerCampaign:
    """A campaign as a partner named it: its STIX id, its name and who shared it."""

    ref: str
    name: str
    partner: str


@dataclass(frozen=True)
class PartnerIndicator:
    """One value a partner lists: ``kind`` is one of ``INTEL_KINDS``."""

    kind: str
    value: str
    campaign: PartnerCampaign
    confidence: int | None = None
    indicator_id: str = ""


@dataclass(frozen=True)
class PartnerMatch:
    """Infrastructure a partner lists, seen on one account (``observed``: the IP inside a
    listed subnet, else the value itself)."""

    account_id: str
    indicator: PartnerIndicator
    observed: str
    exchanges: int


@dataclass(frozen=True)
class PartnerTemplateUse:
    """How many of an account's sampled requests carry a partner campaign's template units."""

    account_id: str
    campaign: PartnerCampaign
    requests: int
    units: int


@dataclass
class IntelMatches:
    """What the received indicators matched in this traffic."""

    infrastructure: list[PartnerMatch] = field(default_factory=list)
    templates: list[PartnerTemplateUse] = field(default_factory=list)
    # partner template units left out because ordinary accounts here send them too
    crowd_units: int = 0

    def accounts(self) -> set[str]:
        """The accounts any indicator matched: the only ones besides the graph's whose
        evidence the verdict reads."""
        return ({m.account_id for m in self.infrastructure}
                | {u.account_id for u in self.templates})


def _best_template_use(matches: IntelMatches) -> dict[str, PartnerTemplateUse]:
    best: dict[str, PartnerTemplateUse] = {}
    for use in matches.templates:
        current = best.get(use.account_id)
        if current is None or (use.requests, use.campaign.ref) > (current.requests,
                                                                  current.campaign.ref):
            best[use.account_id] = use
    return best


def corroborate(evidence: list[AccountEvidence], community: dict[str, tuple[int, float]],
                matches: IntelMatches, policy: Policy) -> dict[str, tuple[int, float]]:
    """Record partner matches on the evidence; return the community map ``judge`` reads.

    An account the scan linked keeps its community. An unlinked account whose
    partner-template share clears the extraction bound (lower 95% bound) joins
    the community most of the same partner campaign's accounts are in, or a new
    one per partner campaign.
    """
    by_id = {e.account_id: e for e in evidence}
    for m in matches.infrastructure:
        if m.account_id in by_id:
            by_id[m.account_id].partner_matches.append(m)
    best = _best_template_use(matches)
    joining: dict[str, list[str]] = {}
    for account_id, use in sorted(best.items()):
        e = by_id.get(account_id)
        if e is None:
            continue
        e.partner_template_share = min(1.0, use.requests / max(e.sampled, 1))
        e.partner_campaign = use.campaign
        e.campaign_template_share = max(e.campaign_template_share, e.partner_template_share)
        if account_id not in community and wilson_lower_bound(
                e.partner_template_share, e.sampled) >= policy.extraction_min_campaign_template_share:
            joining.setdefault(use.campaign.ref, []).append(account_id)
    out = dict(community)
    next_number = max((c for c, _ in community.values()), default=-1) + 1
    for ref in sorted(joining):
        linked = Counter(community[a][0] for a, u in best.items()
                         if u.campaign.ref == ref and a in community)
        if linked:
            number = linked.most_common(1)[0][0]
        else:
            number, next_number = next_number, next_number + 1
        for account_id in joining[ref]:
            out[account_id] = (number, 0.0)
    return out


def partner_attributed(e: AccountEvidence) -> bool:
    """Whether a partner ties the account to one campaign by both the templates it sends
    and operator infrastructure it uses (module doc)."""
    if e.partner_campaign is None or e.partner_template_share <= 0:
        return False
    return any(m.indicator.campaign == e.partner_campaign
               and m.indicator.kind in OPERATOR_INFRASTRUCTURE for m in e.partner_matches)


def partner_reasons(e: AccountEvidence) -> list[str]:
    """Reasons naming what partners listed that this account showed."""
    reasons = []
    if e.partner_campaign is not None and e.partner_template_share > 0:
        c = e.partner_campaign
        low = wilson_lower_bound(e.partner_template_share, e.sampled)
        reasons.append(f"{e.partner_template_share:.0%} of sampled requests carry prompt "
                       f"templates that partner {c.partner} lists for its campaign {c.name} "
                       f"(at least {low:.0%} with 95% confidence)")
    ordered = sorted(e.partner_matches, key=lambda m: (INTEL_KINDS.index(m.indicator.kind),
                                                       -m.exchanges, m.observed))
    for m in ordered[:MAX_INFRA_REASONS]:
        c = m.indicator.campaign
        listed = m.indicator.value
        what = (f"IP {m.observed} (in subnet {listed})" if m.indicator.kind == "subnet"
                else f"{KIND_WORDS[m.indicator.kind]} {_shown(m)}")
        reasons.append(f"{what} listed by partner {c.partner} in campaign {c.name} "
                       f"({m.exchanges:,} exchanges)")
    if len(ordered) > MAX_INFRA_REASONS:
        reasons.append(f"and {len(ordered) - MAX_INFRA_REASONS} more partner indicators")
    return reasons


def _shown(m: PartnerMatch) -> str:
    """The payment fingerprint stays a keyed hash in reasons too (reasons get shared)."""
    return m.indicator.value[:16] + "..." if m.indicator.kind == "payment" else m.observed


def partner_campaign_reasons(members: list[AccountEvidence]) -> list[str]:
    """Per partner campaign: how many of the campaign's accounts match what it lists."""
    accounts: dict[PartnerCampaign, set[str]] = {}
    for m in members:
        if m.partner_campaign is not None and m.partner_template_share > 0:
            accounts.setdefault(m.partner_campaign, set()).add(m.account_id)
        for match in m.partner_matches:
            accounts.setdefault(match.indicator.campaign, set()).add(m.account_id)
    return [f"{len(ids):,} of its {len(members):,} accounts match indicators that partner "
            f"{c.partner} shares for its campaign {c.name}"
            for c, ids in sorted(accounts.items(), key=lambda kv: (-len(kv[1]), kv[0].ref))]
