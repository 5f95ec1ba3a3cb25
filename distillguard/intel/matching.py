"""Match received indicators against the traffic a scan holds.

``IndicatorMatcher(received, hasher)`` is what ``scan --intel`` hands to the
scan (``engines.scan.run_scan(intel=...)``): called with the scan's engine
and policy once templates and linkage are done, it returns
``verdict.IntelMatches`` for the verdict to weigh.

- Infrastructure is matched on every exchange: IPs and ASNs and client
  fingerprints by equality (a join in the engine), subnets on the distinct
  addresses (vectorized here), payment fingerprints by hashing this traffic's
  distinct fingerprints under the sharing key and comparing hashes.
- Template units are matched on the scan's sample (``signals``). A partner
  unit that ordinary accounts here send too is left out, by the same test the
  scan applies to its own campaign templates: most of its uses must come from
  accounts that carry it in a real share of their requests
  (``extraction_min_campaign_template_share``), at least
  ``community_unit_min_inside_share`` of them, and fewer than
  ``template_min_owners`` owners may send it only in passing.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from distillguard.engines.sql_engine import SqlEngine
from distillguard.intel.bundle_reader import ReceivedIntel
from distillguard.intel.config import KeyedHasher
from distillguard.intel.match_sql import (
    EXCHANGE_COLUMNS,
    PARTNER_TEMPLATE_REQUESTS_SQL,
    PARTNER_UNIT_USES_SQL,
    distinct_values_sql,
    value_matches_sql,
)
from distillguard.intel.patterns import template_unit_int
from distillguard.verdict.partner_intel import (
    IntelMatches,
    PartnerIndicator,
    PartnerMatch,
    PartnerTemplateUse,
)
from distillguard.verdict.policy import Policy

__all__ = ["IndicatorMatcher", "ipv4_to_int", "subnet_index"]


def ipv4_to_int(ips: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(addresses as uint32, mask of the rows that are dotted-quad IPv4), vectorized.

    >>> import pyarrow as pa
    >>> value, ok = ipv4_to_int(pa.array(["10.0.0.1", "::1", None, "1.2.3"]))
    >>> [int(v) for v in value[ok]], ok.tolist()
    ([167772161], [True, False, False, False])
    """
    ips = pc.fill_null(ips.cast(pa.string()), "")
    ok = np.asarray(pc.match_substring_regex(
        ips, r"^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$"
    ).to_numpy(zero_copy_only=False), dtype=bool)
    out = np.zeros(len(ips), dtype=np.uint32)
    if ok.any():
        parts = pc.list_flatten(pc.split_pattern(ips.filter(pa.array(ok)), "."))
        octets = np.asarray(pc.cast(parts, pa.uint32())).reshape(-1, 4)
        out[ok] = (octets[:, 0] << 24) | (octets[:, 1] << 16) | (octets[:, 2] << 8) | octets[:, 3]
    return out, ok


def subnet_index(ips: pa.Array, subnets: list[str]) -> np.ndarray:
    """For each address, the index in ``subnets`` of the first one holding it, else -1.

    IPv4 is vectorized (sorted ranges, ``searchsorted``); IPv6 addresses, rare in
    API logs, are checked one by one.
    """
    out = np.full(len(ips), -1, dtype=np.int64)
    nets = [ipaddress.ip_network(s, strict=False) for s in subnets]
    v4 = [(int(n.network_address), int(n.broadcast_address), i) for i, n in enumerate(nets)
          if n.version == 4]
    value, ok = ipv4_to_int(ips)
    if v4 and ok.any():
        v4.sort()
        lo = np.array([r[0] for r in v4], dtype=np.int64)
        hi = np.array([r[1] for r in v4], dtype=np.int64)
        idx = np.array([r[2] for r in v4], dtype=np.int64)
        # widest ranges first win ties only through their start; overlapping nets are rare
        pos = np.searchsorted(lo, value.astype(np.int64), side="right") - 1
        hit = ok & (pos >= 0) & (value.astype(np.int64) <= hi[np.maximum(pos, 0)])
        out[hit] = idx[pos[hit]]
    v6 = [(n, i) for i, n in enumerate(nets) if n.version == 6]
    if v6:
        for row in np.flatnonzero(~ok):
            text = ips[int(row)].as_py()
            try:
                address = ipaddress.ip_address(text) if text else None
            except ValueError:
                continue
            out[row] = next((i for n, i in v6 if address is not None and address in n), -1)
    return out


class IndicatorMatcher:
    """Callable ``(engine, policy) -> IntelMatches`` over the indicators of ``received``.

    ``hasher`` (the sharing key) is needed for payment fingerprints only; without
    it they are skipped (``skipped_payments`` counts them).
    """

    def __init__(self, received: ReceivedIntel, hasher: KeyedHasher | None = None) -> None:
        self.received = received
        self.hasher = hasher
        self.skipped_payments = 0
        self.matches: IntelMatches | None = None  # the last call's, for summaries

    def _of_kind(self, kind: str) -> dict[str, list[PartnerIndicator]]:
        out: dict[str, list[PartnerIndicator]] = defaultdict(list)
        for indicator in self.received.indicators:
            if indicator.kind == kind:
                out[indicator.value].append(indicator)
        return out

    def __call__(self, engine: SqlEngine, policy: Policy) -> IntelMatches:
        matches = IntelMatches()
        matches.infrastructure = (self._exact(engine, "ip") + self._exact(engine, "asn")
                                  + self._exact(engine, "client_fingerprint")
                                  + self._subnets(engine) + self._payments(engine))
        matches.templates, matches.crowd_units = self._templates(engine, policy)
        self.matches = matches
        return matches

    def summary(self) -> str:
        """One line on what the last call matched."""
        m = self.matches
        if m is None:
            return "partner intel: not matched (the scan stopped before the verdict)"
        words = (f"partner intel: {len({t.account_id for t in m.templates}):,} account(s) carry "
                 f"partner templates, {len({i.account_id for i in m.infrastructure}):,} show "
                 f"partner infrastructure ({len(m.infrastructure):,} matches)")
        if m.crowd_units:
            words += f"; {m.crowd_units} partner template unit(s) left out (ordinary accounts "
            words += "here send them)"
        if self.skipped_payments:
            words += (f"; {self.skipped_payments} payment hash(es) not matched (no "
                      "DISTILLGUARD_INTEL_KEY)")
        return words

    def _value_matches(self, engine: SqlEngine, kind: str, values: list[str],
                       ) -> list[tuple[str, str, int]]:
        column = EXCHANGE_COLUMNS[kind]
        typed = (pa.array([int(v) for v in values], pa.int64()) if kind == "asn"
                 else pa.array(values, pa.string()))
        engine.register("partner_values", pa.table({"value": typed}))
        return [(a, str(v), int(n)) for a, v, n in engine.rows(value_matches_sql(column))]

    def _exact(self, engine: SqlEngine, kind: str) -> list[PartnerMatch]:
        listed = self._of_kind(kind)
        if not listed:
            return []
        return [PartnerMatch(account, indicator, value, n)
                for account, value, n in self._value_matches(engine, kind, sorted(listed))
                for indicator in listed[value]]

    def _subnets(self, engine: SqlEngine) -> list[PartnerMatch]:
        listed = self._of_kind("subnet")
        if not listed:
            return []
        subnets = sorted(listed)
        ips = engine.arrow(distinct_values_sql("ip")).column("value").combine_chunks()
        where = subnet_index(ips, subnets)
        inside = {ips[int(i)].as_py(): subnets[int(where[i])] for i in np.flatnonzero(where >= 0)}
        if not inside:
            return []
        return [PartnerMatch(account, indicator, ip, n)
                for account, ip, n in self._value_matches(engine, "ip", sorted(inside))
                for indicator in listed[inside[ip]]]

    def _payments(self, engine: SqlEngine) -> list[PartnerMatch]:
        listed = self._of_kind("payment")
        if not listed:
            return []
        if self.hasher is None:
            self.skipped_payments = sum(len(v) for v in listed.values())
            return []
        raw = engine.arrow(distinct_values_sql("payment_fingerprint")).column("value")
        hashed = {self.hasher.hash(v): v for v in raw.to_pylist()}
        ours = {hashed[h]: h for h in listed if h in hashed}
        if not ours:
            return []
        # reasons show the keyed hash, never this traffic's raw fingerprint
        return [PartnerMatch(account, indicator, ours[value], n)
                for account, value, n in self._value_matches(engine, "payment", sorted(ours))
                for indicator in listed[ours[value]]]

    def _templates(self, engine: SqlEngine, policy: Policy,
                   ) -> tuple[list[PartnerTemplateUse], int]:
        listed = self._of_kind("template")
        if not listed:
            return [], 0
        units = {template_unit_int(v): v for v in listed}
        engine.register("partner_unit_set", pa.table({"unit": pa.array(sorted(units),
                                                                          pa.int64())}))
        kept = _campaign_units(engine.rows(PARTNER_UNIT_USES_SQL), policy)
        crowd = len(units) - len(kept)
        campaigns = sorted({i.campaign for v in listed.values() for i in v},
                           key=lambda c: (c.partner, c.name, c.ref))
        number = {c: n for n, c in enumerate(campaigns)}
        pairs = [(unit, number[i.campaign]) for unit in sorted(kept)
                 for i in listed[units[unit]]]
        if not pairs:
            return [], crowd
        engine.register("partner_units", pa.table({
            "unit": pa.array([u for u, _ in pairs], pa.int64()),
            "campaign": pa.array([c for _, c in pairs], pa.int32())}))
        return [PartnerTemplateUse(account, campaigns[c], int(requests), int(n_units))
                for account, c, requests, n_units
                in engine.rows(PARTNER_TEMPLATE_REQUESTS_SQL)], crowd


def _campaign_units(rows: list[tuple[str, str, int, int, int]], policy: Policy) -> set[int]:
    """Partner units whose uses here look like a campaign's, not a crowd's (module doc).

    An account is *inside* when partner units, all together, appear in at least
    ``extraction_min_campaign_template_share`` of its sampled requests (counting
    a request once per unit: an upper bound, fine for telling heavy users from
    occasional ones).
    """
    carried: dict[str, int] = defaultdict(int)
    for account, _owner, _unit, uses, _sampled in rows:
        carried[account] += uses
    inside_uses: dict[int, int] = defaultdict(int)
    total: dict[int, int] = defaultdict(int)
    outside_owners: dict[int, set[str]] = defaultdict(set)
    for account, owner, unit, uses, sampled in rows:
        total[unit] += uses
        if carried[account] / max(sampled, 1) >= policy.extraction_min_campaign_template_share:
            inside_uses[unit] += uses
        else:
            outside_owners[unit].add(owner)
    return {u for u in total
            if inside_uses[u] >= policy.community_unit_min_inside_share * total[u]
            and len(outside_owners[u]) < policy.template_min_owners}
