"""findings.json -> a STIX 2.1 bundle a partner's MISP or OpenCTI reads.

Per campaign: a ``campaign`` (confidence from its score), an ``intrusion-set``
where an analyst attributed it, one ``attack-pattern`` per technique (mapped
to MITRE ATLAS), one ``indicator`` per shared value (IPs, /24 subnets holding
several of its IPs, ASNs, client fingerprints, prompt-template units, payment
fingerprints), ``relationship`` objects tying them together, ``sighting``
objects with counts and first/last seen, all marked TLP (AMBER by default)
and created by the producer's ``identity``.

Customers' data never leaves: account ids and payment fingerprints are
exported only as keyed hashes (``config.KeyedHasher``); prompts, account-level
reasons and sample requests are not exported at all.
"""

from __future__ import annotations

import hashlib
import ipaddress
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import stix2

from distillguard.errors import IntelError
from distillguard.intel.config import IntelConfig, KeyedHasher
from distillguard.intel.patterns import indicator_pattern
from distillguard.intel.vocabulary import (
    ATLAS_REFERENCES,
    DG_NAMESPACE,
    TEMPLATE_HASHING,
    TLP_MARKINGS,
)
from distillguard.signals.lexicon import load_lexicon

__all__ = ["IndicatorStats", "campaign_values", "findings_to_bundle"]

SUBNET_PREFIX = 24          # IPv4 /24 blocks holding at least SUBNET_MIN_IPS campaign IPs
SUBNET_MIN_IPS = 2
MAX_STIX_COUNT = 999_999_999
CAVEAT = ("Shared infrastructure can also carry legitimate users (NAT, proxies, clouds): "
          "corroborate with what the accounts ask for before acting.")


@dataclass(frozen=True)
class IndicatorStats:
    """What the producer saw of one value: exchanges, accounts, first and last seen."""

    exchanges: int
    accounts: int
    first_seen: str
    last_seen: str


class _Ids:
    """Deterministic STIX ids: the same findings exported twice give the same objects.

    STIX 2.1 wants UUIDv4 for domain objects: the id is a v4-shaped UUID whose
    random bits come from a hash of the producer and the object's identity.
    """

    def __init__(self, producer: str) -> None:
        self.producer = producer

    def __call__(self, stix_type: str, *parts: object) -> str:
        name = "|".join([str(DG_NAMESPACE), self.producer, stix_type, *map(str, parts)])
        digest = hashlib.sha256(name.encode("utf-8")).digest()[:16]
        return f"{stix_type}--{uuid.UUID(bytes=digest, version=4)}"


def _stix_time(value: Any, fallback: str) -> str:
    if not value:
        return fallback
    text = str(value)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return fallback
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _subnets(ips: Iterable[str]) -> list[str]:
    blocks: Counter[str] = Counter()
    for ip in ips:
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            continue
        if address.version == 4:
            blocks[str(ipaddress.ip_network(f"{ip}/{SUBNET_PREFIX}", strict=False))] += 1
    return sorted(net for net, n in blocks.items() if n >= SUBNET_MIN_IPS)


def campaign_values(campaign: dict[str, Any]) -> list[tuple[str, str]]:
    """(kind, value as the findings hold it) of every indicator to share."""
    found = campaign.get("indicators") or {}
    ips = [str(v) for v in found.get("ips", [])]
    out = [("ip", ip) for ip in ips] + [("subnet", s) for s in _subnets(ips)]
    out += [("asn", str(int(v))) for v in found.get("asns", [])]
    out += [("client_fingerprint", str(v)) for v in found.get("client_fingerprints", [])]
    out += [("template", str(v).removeprefix("unit:")) for v in found.get("templates", [])]
    out += [("payment", str(v)) for v in found.get("payment_fingerprints", [])]
    return out


_KIND_NAMES = {"ip": "IP address", "subnet": "Subnet", "asn": "Autonomous system",
               "client_fingerprint": "Client fingerprint", "template": "Prompt-template unit",
               "payment": "Payment instrument (keyed hash)"}


def _describe(kind: str, value: str, hasher: KeyedHasher) -> str:
    if kind == "template":
        return (f"A text unit of the campaign's request templates, hashed as "
                f"{TEMPLATE_HASHING} (lowercased, digits folded to 0, XXH3-64): compute the "
                "same on your own requests to find the same pipeline.")
    if kind == "payment":
        return (f"Payment fingerprint used by the campaign's accounts, as {hasher.scheme} "
                "under the sharing community's key.")
    return f"Seen on the campaign's accounts. {CAVEAT}"


class _Builder:
    def __init__(self, findings: dict[str, Any], config: IntelConfig,
                 attribution: dict[str, str], stats: dict[tuple[str, str, str], IndicatorStats],
                 ) -> None:
        self.findings = findings
        self.hasher = config.hasher()
        self.ids = _Ids(config.producer)
        self.tlp = TLP_MARKINGS[config.tlp]
        self.now = _stix_time(findings.get("generated_at"),
                              datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
        self.attribution = attribution
        self.stats = stats
        self.identity = stix2.Identity(
            id=self.ids("identity"), name=config.producer, identity_class="organization",
            contact_information=config.contact, created=self.now, modified=self.now,
            description="Producer of distillation-campaign intelligence (distillguard).")
        self.objects: list[Any] = [self.identity, self.tlp]
        self._seen: set[str] = {self.identity.id, self.tlp.id}

    def add(self, obj: Any) -> Any:
        if obj.id not in self._seen:
            self._seen.add(obj.id)
            self.objects.append(obj)
        return obj

    def common(self) -> dict[str, Any]:
        return {"created_by_ref": self.identity.id, "created": self.now, "modified": self.now,
                "object_marking_refs": [self.tlp.id]}

    def relate(self, source: Any, kind: str, target: Any) -> None:
        self.add(stix2.Relationship(id=self.ids("relationship", source.id, kind, target.id),
                                    source_ref=source.id, relationship_type=kind,
                                    target_ref=target.id, **self.common()))

    def sighting(self, of: Any, count: int, first: str, last: str, what: str) -> None:
        self.add(stix2.Sighting(
            id=self.ids("sighting", of.id), sighting_of_ref=of.id,
            count=max(0, min(int(count), MAX_STIX_COUNT)), first_seen=first, last_seen=last,
            where_sighted_refs=[self.identity.id], description=what, **self.common()))

    def campaign(self, c: dict[str, Any]) -> None:
        cid = str(c.get("campaign_id", ""))
        first = _stix_time(c.get("first_seen"), self.now)
        last = _stix_time(c.get("last_seen"), first)
        confidence = max(0, min(100, round(float(c.get("score") or 0) * 100)))
        accounts = sorted(str(a) for a in c.get("accounts", []))
        props = {
            "x_distillguard_account_hashes": self.hasher.hash_all(accounts),
            "x_distillguard_accounts": len(accounts),
            "x_distillguard_exchanges": int(c.get("exchanges") or 0),
            "x_distillguard_capabilities": {str(k): float(v) for k, v in
                                            (c.get("capabilities") or {}).items()},
            "x_distillguard_techniques": [str(t) for t in c.get("techniques", [])],
            "x_distillguard_hashing": self.hasher.scheme,
        }
        rule_ids = c.get("rule_ids") or c.get("rules")
        if rule_ids:
            props["x_distillguard_rule_ids"] = [str(r) for r in rule_ids]
        campaign = self.add(stix2.Campaign(
            id=self.ids("campaign", cid, first, ",".join(props["x_distillguard_account_hashes"])),
            name=f"Distillation campaign {cid} ({self.identity.name}, first seen {first[:10]})",
            description=" ".join(f"{r}." for r in c.get("reasons", [])) or None,
            objective="Harvest a model's outputs through its API to train another model "
                      "(distillation).",
            first_seen=first, last_seen=last, confidence=confidence,
            allow_custom=True, **props, **self.common()))
        self.sighting(campaign, int(c.get("exchanges") or 0), first, last,
                      f"{len(accounts):,} accounts, {int(c.get('exchanges') or 0):,} exchanges")
        if cid in self.attribution:
            name = self.attribution[cid]
            actor = self.add(stix2.IntrusionSet(
                id=self.ids("intrusion-set", name), name=name,
                description=f"Operator the producer attributes campaign {cid} to.",
                **self.common()))
            self.relate(campaign, "attributed-to", actor)
        patterns = {t.name: t.attack_pattern for t in load_lexicon().techniques}
        for technique in c.get("techniques", []):
            if technique in patterns:
                known = patterns[technique]
                refs = [dict(ATLAS_REFERENCES[i]) for i in known.atlas if i in ATLAS_REFERENCES]
                pattern = self.add(stix2.AttackPattern(
                    id=self.ids("attack-pattern", technique), name=known.title,
                    description=known.description,
                    **({"external_references": refs} if refs else {}), **self.common()))
                self.relate(campaign, "uses", pattern)
        for kind, raw in campaign_values(c):
            self.indicator(campaign, cid, kind, raw, confidence, first)

    def indicator(self, campaign: Any, cid: str, kind: str, raw: str, confidence: int,
                  first: str) -> None:
        """One indicator; a payment fingerprint leaves only as its keyed hash."""
        value = self.hasher.hash(raw) if kind == "payment" else raw
        shown = value if kind != "payment" else value[:16] + "..."
        indicator = self.add(stix2.Indicator(
            id=self.ids("indicator", campaign.id, kind, value),
            name=f"{_KIND_NAMES[kind]} {shown} of distillation campaign {cid}",
            description=_describe(kind, value, self.hasher),
            indicator_types=["malicious-activity"], pattern=indicator_pattern(kind, value),
            pattern_type="stix", pattern_version="2.1", valid_from=first, confidence=confidence,
            **self.common()))
        self.relate(indicator, "indicates", campaign)
        seen = self.stats.get((cid, kind, raw))
        if seen is not None:
            self.sighting(indicator, seen.exchanges, _stix_time(seen.first_seen, first),
                          _stix_time(seen.last_seen, first),
                          f"{seen.accounts:,} accounts, {seen.exchanges:,} exchanges")


def findings_to_bundle(findings: dict[str, Any], config: IntelConfig, *,
                       attribution: dict[str, str] | None = None,
                       stats: dict[tuple[str, str, str], IndicatorStats] | None = None,
                       ) -> stix2.Bundle:
    """One bundle for every campaign of ``findings``.

    ``attribution`` maps campaign ids to the operator an analyst attributes them
    to (an ``intrusion-set`` each); ``stats`` holds per-indicator sightings
    keyed by (campaign id, kind, raw value) when the traffic is at hand
    (``intel.indicator_stats``).
    """
    if not isinstance(findings, dict) or not isinstance(findings.get("campaigns"), list):
        msg = "not a findings file: it has no 'campaigns' list (see shared/spec/findings.md)"
        raise IntelError(msg)
    unknown = sorted(set(attribution or {}) - {str(c.get("campaign_id"))
                                               for c in findings["campaigns"]})
    if unknown:
        msg = f"cannot attribute unknown campaign(s) {', '.join(unknown)}"
        raise IntelError(msg)
    builder = _Builder(findings, config, attribution or {}, stats or {})
    try:
        for campaign in findings["campaigns"]:
            builder.campaign(campaign)
        return stix2.Bundle(objects=builder.objects, allow_custom=True)
    except (stix2.exceptions.STIXError, ValueError, TypeError, KeyError) as exc:
        msg = f"cannot build a STIX bundle from these findings: {exc}"
        raise IntelError(msg) from exc
