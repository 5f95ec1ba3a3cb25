"""Partner indicators matched against traffic, and what the verdict makes of the matches."""

from __future__ import annotations

from datetime import datetime

import duckdb
import pyarrow as pa
import pytest

from distillguard.engines.sql_engine import DuckDBEngine
from distillguard.intel import IndicatorMatcher, KeyedHasher, ReceivedIntel, indicator_pattern
from distillguard.intel.matching import ipv4_to_int, subnet_index
from distillguard.intel.patterns import pattern_values, template_unit_hex, template_unit_int
from distillguard.verdict import (
    AccountEvidence,
    IntelMatches,
    PartnerCampaign,
    PartnerIndicator,
    PartnerTemplateUse,
    corroborate,
    judge,
    load_policy,
)
from distillguard.verdict.reasons import account_reasons
from tests.intel.conftest import SECRET

CAMPAIGN = PartnerCampaign("campaign--1", "Y", "Lab A")
CAMPAIGN_UNIT = -4_000_000_000_000_000_001
POPULAR_UNIT = 1234567


def _received(*pairs: tuple[str, str]) -> ReceivedIntel:
    return ReceivedIntel(indicators=[PartnerIndicator(k, v, CAMPAIGN) for k, v in pairs])


def _engine(exchanges: list[dict], signals: list[dict]) -> DuckDBEngine:
    con = duckdb.connect()
    engine = DuckDBEngine(con)
    engine.register("exchanges", pa.Table.from_pylist(exchanges, schema=pa.schema([
        ("account_id", pa.string()), ("ip", pa.string()), ("asn", pa.int64()),
        ("client_fingerprint", pa.string()), ("payment_fingerprint", pa.string())])))
    engine.register("signals", pa.Table.from_pylist(signals, schema=pa.schema([
        ("account_id", pa.string()), ("owner", pa.string()), ("row_id", pa.int64()),
        ("units", pa.list_(pa.int64()))])))
    return engine


def _ex(account: str, ip: str = "192.0.2.1", asn: int = 64999, client: str = "ua",
        payment: str | None = None) -> dict:
    return {"account_id": account, "ip": ip, "asn": asn, "client_fingerprint": client,
            "payment_fingerprint": payment}


def test_ipv4_parsing_and_subnets_are_vectorized_and_exact() -> None:
    ips = pa.array(["198.51.100.7", "198.51.101.7", "10.0.0.300", "2001:db8::1", None, "1.2.3"])
    value, ok = ipv4_to_int(ips)
    assert ok.tolist() == [True, True, False, False, False, False]
    assert int(value[0]) == (198 << 24) | (51 << 16) | (100 << 8) | 7
    where = subnet_index(ips, ["198.51.100.0/24", "2001:db8::/32"])
    assert where.tolist() == [0, -1, -1, 1, -1, -1]


def test_patterns_round_trip_for_every_kind() -> None:
    for kind, value in [("ip", "203.0.113.7"), ("ip", "2001:db8::7"), ("subnet", "203.0.113.0/24"),
                        ("asn", "64500"), ("client_fingerprint", "t13d_it's"),
                        ("template", template_unit_hex(CAMPAIGN_UNIT)), ("payment", "ab" * 32)]:
        assert pattern_values(indicator_pattern(kind, value)) == [(kind, value)]
    assert template_unit_int(template_unit_hex(CAMPAIGN_UNIT)) == CAMPAIGN_UNIT


def test_infrastructure_matches_name_account_value_and_exchanges() -> None:
    hasher = KeyedHasher(SECRET)
    engine = _engine(
        [_ex("a1", ip="203.0.113.7"), _ex("a1", ip="203.0.113.7"), _ex("a2", ip="198.51.100.9"),
         _ex("a3", asn=64500), _ex("a4", client="t13d_custom"), _ex("a5", payment="pm_raw_1"),
         _ex("legit", ip="192.0.2.50", payment="pm_raw_2")], [])
    matcher = IndicatorMatcher(_received(
        ("ip", "203.0.113.7"), ("subnet", "198.51.100.0/24"), ("asn", "64500"),
        ("client_fingerprint", "t13d_custom"), ("payment", hasher.hash("pm_raw_1"))), hasher)
    found = {(m.account_id, m.indicator.kind, m.observed, m.exchanges)
             for m in matcher(engine, load_policy()).infrastructure}
    assert found == {("a1", "ip", "203.0.113.7", 2), ("a2", "subnet", "198.51.100.9", 1),
                     ("a3", "asn", "64500", 1), ("a4", "client_fingerprint", "t13d_custom", 1),
                     ("a5", "payment", hasher.hash("pm_raw_1"), 1)}


def test_payment_hashes_need_the_sharing_key() -> None:
    engine = _engine([_ex("a5", payment="pm_raw_1")], [])
    matcher = IndicatorMatcher(_received(("payment", KeyedHasher(SECRET).hash("pm_raw_1"))))
    assert matcher(engine, load_policy()).infrastructure == []
    assert matcher.skipped_payments == 1


def _signals() -> list[dict]:
    """Campaign accounts c1..c3 carry the campaign unit in most requests; eight ordinary
    accounts send a popular unit that a careless partner also listed, once each."""
    rows, row = [], 0
    for account in ("c1", "c2", "c3"):
        for i in range(20):
            rows.append({"account_id": account, "owner": account, "row_id": row,
                         "units": [CAMPAIGN_UNIT, 99] if i < 15 else [7]})
            row += 1
    for k in range(8):
        for i in range(20):
            rows.append({"account_id": f"u{k}", "owner": f"u{k}", "row_id": row,
                         "units": [POPULAR_UNIT] if i == 0 else [row]})
            row += 1
    return rows


def test_template_matches_leave_out_units_the_crowd_sends() -> None:
    engine = _engine([], _signals())
    matcher = IndicatorMatcher(_received(("template", template_unit_hex(CAMPAIGN_UNIT)),
                                         ("template", template_unit_hex(POPULAR_UNIT))))
    matches = matcher(engine, load_policy())
    assert matches.crowd_units == 1
    assert sorted((t.account_id, t.requests) for t in matches.templates) == [
        ("c1", 15), ("c2", 15), ("c3", 15)]


def _evidence(account: str, *, sampled: int = 20, technique: float = 0.5) -> AccountEvidence:
    t = datetime(2026, 3, 1)
    return AccountEvidence(account_id=account, owner=account, exchanges=sampled, first_seen=t,
                           last_seen=t, hours_active=3, sampled=sampled, template_share=0.0,
                           technique_shares={"data_generation": technique}, any_technique=technique,
                           multi_turn=0.0)


def test_partner_templates_and_infrastructure_make_a_campaign_the_scan_had_not_linked(
        ) -> None:
    policy = load_policy()
    evidence = [_evidence(a) for a in ("c1", "c2", "c3", "u0")]
    engine = _engine([_ex("u0", ip="203.0.113.7")]
                     + [_ex(a, ip=f"198.51.100.{i}") for i, a in enumerate(("c1", "c2", "c3"))],
                     _signals())
    matcher = IndicatorMatcher(_received(("template", template_unit_hex(CAMPAIGN_UNIT)),
                                         ("ip", "203.0.113.7"), ("subnet", "198.51.100.0/24")))
    verdicts, campaigns = judge(evidence, {}, policy)
    assert verdicts == [] and campaigns == []
    community = corroborate(evidence, {}, matcher(engine, policy), policy)
    verdicts, campaigns = judge(evidence, community, policy)
    assert [sorted(m.account_id for m in c.members) for c in campaigns] == [["c1", "c2", "c3"]]
    assert {v.evidence.account_id: v.verdict for v in verdicts} == {
        "c1": "extraction", "c2": "extraction", "c3": "extraction"}
    reasons = account_reasons(verdicts[0], policy)
    assert any("partner Lab A lists for its campaign Y" in r.text for r in reasons)


def test_partner_templates_alone_do_not_stand_in_for_operator_ties() -> None:
    """A partner's campaign also sends public prompts (a published judge prompt) that
    unrelated teams here send: templates without the operator's infrastructure (nor an
    AS or a client fingerprint, which a cloud's or an SDK's customers share) list nobody."""
    policy = load_policy()
    evidence = [_evidence(a) for a in ("c1", "c2", "c3")]
    engine = _engine([_ex(a, asn=64500, client="t13d_sdk") for a in ("c1", "c2", "c3")],
                     _signals())
    matcher = IndicatorMatcher(_received(("template", template_unit_hex(CAMPAIGN_UNIT)),
                                         ("asn", "64500"), ("client_fingerprint", "t13d_sdk")))
    community = corroborate(evidence, {}, matcher(engine, policy), policy)
    assert set(community) == {"c1", "c2", "c3"}
    assert judge(evidence, community, policy) == ([], [])


def test_infrastructure_alone_never_lists_an_account() -> None:
    """A partner's IP list also matches NAT'd customers: a match is a reason, not a verdict."""
    policy = load_policy()
    evidence = [_evidence(f"n{i}") for i in range(5)]
    engine = _engine([_ex(f"n{i}", ip="203.0.113.7", asn=64500) for i in range(5)], [])
    matcher = IndicatorMatcher(_received(("ip", "203.0.113.7"), ("asn", "64500")))
    community = corroborate(evidence, {}, matcher(engine, policy), policy)
    assert community == {}
    assert judge(evidence, community, policy) == ([], [])
    assert all(len(e.partner_matches) == 2 for e in evidence)


@pytest.mark.parametrize(("share", "joins"), [(0.05, False), (0.15, False), (0.5, True)])
def test_an_unlinked_account_joins_only_on_its_own_strong_share(share: float,
                                                                 joins: bool) -> None:
    policy = load_policy()
    evidence = [_evidence(a, sampled=40) for a in ("c1", "c2", "c3", "weak")]
    matches = IntelMatches(templates=[
        PartnerTemplateUse(a, CAMPAIGN, int(40 * (0.8 if a != "weak" else share)), 1)
        for a in ("c1", "c2", "c3", "weak")])
    community = corroborate(evidence, {}, matches, policy)
    # of 40 sampled requests, 15 % has a lower 95 % bound under the 10 % extraction bound
    assert ("weak" in community) == joins and {"c1", "c2", "c3"} <= set(community)
