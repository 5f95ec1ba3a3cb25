"""The batch scan, engine-agnostic: behavior -> signals -> templates -> linkage -> verdict.

Every exchange feeds behavior (SQL over all exchanges); a stable per-account
sample feeds content signals; candidate accounts are linked by shared
templates and infrastructure; communities are judged as campaigns. The SQL
runs on whichever ``SqlEngine`` is given (DuckDB on one machine, Spark on a
cluster); what reaches Python is per account or smaller.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa

from distillguard.behavior.account_sql import (
    ACCOUNT_BEHAVIOR_SQL,
    ACCOUNT_CONTENT_SQL,
    ACCOUNT_RELEASE_SQL,
)
from distillguard.engines.sql_engine import SqlEngine
from distillguard.linkage.account_graph import build_account_graph
from distillguard.linkage.template_sql import (
    ACCOUNT_CAMPAIGN_TEMPLATE_SQL,
    ACCOUNT_TEMPLATE_SQL,
    ACCOUNT_UNITS_SQL,
    COMMUNITY_UNITS_SQL,
    UNIT_STATS_SQL,
)
from distillguard.signals.lexicon import Lexicon, load_lexicon
from distillguard.verdict.campaign_sql import (
    ACCOUNT_TEMPLATE_USES_SQL,
    BASELINE_PIVOTS_SQL,
    CAMPAIGN_CAPABILITIES_SQL,
    CAMPAIGN_CREATION_BATCHES_SQL,
    CAMPAIGN_INDICATORS_SQL,
    CAMPAIGN_PIVOTS_SQL,
    CAMPAIGN_SAMPLE_PROMPTS_SQL,
    CAMPAIGN_SPAN_SQL,
)
from distillguard.verdict.campaigns import (
    AccountVerdict,
    CampaignVerdict,
    campaign_communities,
    judge,
)
from distillguard.verdict.evidence import TECHNIQUES, AccountEvidence
from distillguard.verdict.partner_intel import IntelMatches, corroborate
from distillguard.verdict.policy import Policy

__all__ = ["IntelMatcher", "ScanResult", "run_scan"]

# Matches indicators received from partners against the traffic an engine holds
# (``intel.IndicatorMatcher``); the verdict weighs them (``verdict.partner_intel``).
IntelMatcher = Callable[[SqlEngine, Policy], IntelMatches]

_MASK64 = (1 << 64) - 1


@dataclass
class ScanResult:
    verdicts: list[AccountVerdict]
    campaigns: list[CampaignVerdict]
    campaign_profiles: dict[str, dict[str, Any]]
    input: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)


def _releases_table(releases: list[dict[str, str]]) -> pa.Table:
    return pa.table({
        "model": pa.array([r["model"] for r in releases], pa.string()),
        "released_at": pa.array([datetime.fromisoformat(r["released_at"].replace("Z", "+00:00"))
                                 .replace(tzinfo=None) for r in releases], pa.timestamp("us")),
    })


def _evidence(engine: SqlEngine) -> list[AccountEvidence]:
    rows = engine.rows("""
        SELECT b.account_id, coalesce(b.org_id, b.payment_fingerprint, b.account_id) AS owner,
               b.exchanges, b.first_seen, b.last_seen, b.hours_active,
               coalesce(c.sampled, 0), coalesce(t.template_share, 0),
               coalesce(c.cot_elicitation, 0), coalesce(c.grading, 0),
               coalesce(c.data_generation, 0), coalesce(c.safe_rewrite, 0),
               coalesce(c.tool_use, 0), coalesce(c.any_technique, 0), coalesce(c.multi_turn, 0),
               b.payment_fingerprint, b.main_ip, b.main_asn, b.main_client_fingerprint,
               b.account_tier, b.verified
        FROM account_behavior b
        LEFT JOIN account_content c USING (account_id)
        LEFT JOIN account_template t USING (account_id)
        ORDER BY b.account_id
    """)
    out = []
    for r in rows:
        out.append(AccountEvidence(
            account_id=r[0], owner=r[1], exchanges=r[2], first_seen=r[3], last_seen=r[4],
            hours_active=r[5], sampled=r[6], template_share=float(r[7]),
            technique_shares=dict(zip(TECHNIQUES, map(float, r[8:13]), strict=True)),
            any_technique=float(r[13]), multi_turn=float(r[14]), payment_fingerprint=r[15],
            main_ip=r[16], main_asn=r[17], main_client_fingerprint=r[18], account_tier=r[19],
            verified=bool(r[20])))
    return out


def _link_accounts(engine: SqlEngine, evidence: list[AccountEvidence],
                   policy: Policy) -> dict[str, tuple[int, float]]:
    """Build the account graph of template users and find their communities.

    Also measures, for accounts of communities that look like campaigns, the
    share of their requests carrying campaign-characteristic templates
    (``AccountEvidence.campaign_template_share``). Returns each candidate's
    community and its affinity with it.
    """
    candidates = [e for e in evidence
                  if round(e.template_share * e.sampled) >= policy.candidate_min_template_requests]
    engine.register("account_community", pa.table({"account_id": pa.array([], pa.string()),
                                                   "community": pa.array([], pa.int64())}))
    engine.register("community_units", pa.table({"unit": pa.array([], pa.int64())}))
    if not candidates:
        return {}
    position = {e.account_id: i for i, e in enumerate(candidates)}
    engine.register("graph_candidates", pa.table({"account_id": pa.array(list(position),
                                                                         pa.string())}))
    pairs = engine.arrow(ACCOUNT_UNITS_SQL, {"min_owners": policy.template_min_owners})
    account_pos = np.array([position[a] for a in pairs.column("account_id").to_pylist()],
                           dtype=np.int64)
    _, unit_pos = np.unique(pairs.column("unit").to_numpy(), return_inverse=True)
    counts = pairs.column("n").to_numpy().astype(np.int64)
    sampled = np.array([max(e.sampled, 1) for e in candidates], dtype=np.float32)
    shared = {
        "payment_fingerprint": [e.payment_fingerprint for e in candidates],
        "main_client_fingerprint": [e.main_client_fingerprint for e in candidates],
        "main_ip": [e.main_ip for e in candidates],
    }
    graph = build_account_graph([e.account_id for e in candidates], sampled,
                                (account_pos, unit_pos.astype(np.int64), counts), shared,
                                policy.graph)
    provisional = campaign_communities(
        candidates, dict(zip(graph.accounts, graph.community.tolist(), strict=True)), policy)
    in_campaign = np.isin(graph.community, list(provisional))
    engine.register("account_community", pa.table({
        "account_id": pa.array(graph.accounts, pa.string()).filter(pa.array(in_campaign)),
        "community": pa.array(graph.community[in_campaign], pa.int64())}))
    engine.materialize("community_units", COMMUNITY_UNITS_SQL,
                       {"min_inside_share": policy.community_unit_min_inside_share,
                        "min_owners": policy.template_min_owners})
    on_campaign = dict(engine.rows(ACCOUNT_CAMPAIGN_TEMPLATE_SQL))
    for e in candidates:
        e.campaign_template_share = on_campaign.get(e.account_id, 0) / max(e.sampled, 1)
    return {a: (int(c), float(f)) for a, c, f in
            zip(graph.accounts, graph.community, graph.affinity, strict=True)}


def _profiles(engine: SqlEngine, campaigns: list[CampaignVerdict]) -> dict[str, dict[str, Any]]:
    engine.register("campaign_members", pa.table({
        "account_id": pa.array([m.account_id for c in campaigns for m in c.members], pa.string()),
        "campaign_id": pa.array([c.campaign_id for c in campaigns for _ in c.members],
                                pa.string()),
    }))
    profiles: dict[str, dict[str, Any]] = {
        c.campaign_id: {"capabilities": {}, "indicators": {"ips": [], "asns": [],
                        "payment_fingerprints": [], "client_fingerprints": [], "templates": []},
                        "pivots": []} for c in campaigns}
    for cid, exchanges, first, last in engine.rows(CAMPAIGN_SPAN_SQL):
        profiles[cid].update(exchanges=int(exchanges), first_seen=first, last_seen=last)
    totals: dict[str, int] = {}
    caps = engine.rows(CAMPAIGN_CAPABILITIES_SQL)
    for cid, _cap, n in caps:
        totals[cid] = totals.get(cid, 0) + n
    for cid, cap, n in caps:
        profiles[cid]["capabilities"][cap] = round(n / totals[cid], 4)
    for cid, kind, value, _n in engine.rows(CAMPAIGN_INDICATORS_SQL):
        bucket = profiles[cid]["indicators"][kind]
        if len(bucket) < 50:
            bucket.append(int(value) if kind == "asns" else value)
    campaign_of = {m.account_id: c.campaign_id for c in campaigns for m in c.members}
    unit_uses: dict[str, Counter[int]] = {c.campaign_id: Counter() for c in campaigns}
    for account_id, unit, uses in engine.rows(ACCOUNT_TEMPLATE_USES_SQL):
        if account_id in campaign_of:
            unit_uses[campaign_of[account_id]][int(unit)] += uses
    for cid, counter in unit_uses.items():
        profiles[cid]["indicators"]["templates"] = [
            f"unit:{unit & _MASK64:016x}" for unit, _ in sorted(counter.items(), key=lambda kv: (-kv[1],
                                                                                      kv[0]))[:20]]
    for cid, with_created, in_batches in engine.rows(CAMPAIGN_CREATION_BATCHES_SQL):
        profiles[cid]["created_in_batches"] = {"accounts_with_creation_time": int(with_created),
                                               "created_within_10_min_of_another": int(in_batches)}
    _sample_prompts(engine, campaign_of, profiles)
    baseline = {m: (n, k) for m, n, k in engine.rows(BASELINE_PIVOTS_SQL)}
    for cid, model, released, n, k in engine.rows(CAMPAIGN_PIVOTS_SQL):
        base_n, base_k = baseline.get(model, (0, 0))
        profiles[cid]["pivots"].append({
            "model": model, "released_at": released,
            "share_within_24h": round(k / n, 4) if n else 0.0,
            "exchanges_within_24h": int(n),
            "baseline_share_within_24h": round(base_k / base_n, 4) if base_n else None,
        })
    return profiles


SAMPLE_PROMPTS_PER_CAMPAIGN = 3


def _sample_prompts(engine: SqlEngine, campaign_of: dict[str, str],
                    profiles: dict[str, dict[str, Any]]) -> None:
    """A few requests carrying each campaign's templates, from different accounts."""
    chosen: dict[str, list[str]] = {cid: [] for cid in profiles}
    picks: list[tuple[str, Any]] = []
    seen: set[str] = set()
    for account_id, request_id, ts in engine.rows(CAMPAIGN_SAMPLE_PROMPTS_SQL):
        cid = campaign_of.get(account_id)
        if cid and account_id not in seen and len(chosen[cid]) < SAMPLE_PROMPTS_PER_CAMPAIGN:
            chosen[cid].append(request_id)
            picks.append((request_id, ts))
            seen.add(account_id)
    texts = {request_id: _prompt_text(system, messages)
             for request_id, system, messages in engine.exchange_rows(picks)}
    for cid, request_ids in chosen.items():
        profiles[cid]["sample_prompts"] = [texts[r][:600] for r in request_ids if texts.get(r)]


def _prompt_text(system: str | None, messages: list[Any]) -> str | None:
    """System prompt and new turn, as an analyst reads the request."""
    if not messages:
        return None
    last = messages[-1]
    content = last["content"] if isinstance(last, dict) else last.content
    if content is None:
        return None
    return (f"{system}\n" if system is not None else "") + content


def run_scan(engine: SqlEngine, *, policy: Policy, releases: list[dict[str, str]],
             lexicon: Lexicon | None = None,
             on_step: Callable[[str], None] | None = None,
             on_signal_rows: Callable[[int], None] | None = None,
             intel: IntelMatcher | None = None) -> ScanResult:
    """Scan every exchange ``engine`` holds; return verdicts, campaigns and their profiles.

    ``intel`` matches partners' indicators against the traffic; the matches
    become evidence before the verdict (``verdict.partner_intel.corroborate``).
    """
    lexicon = lexicon or load_lexicon()
    timings: dict[str, float] = {}

    def step(name: str, started: float) -> float:
        now = time.perf_counter()
        timings[name] = round(now - started, 3)
        if on_step:
            on_step(name)
        return now

    t = time.perf_counter()
    engine.register("releases", _releases_table(releases))
    engine.materialize("account_behavior", ACCOUNT_BEHAVIOR_SQL)
    engine.materialize("account_release", ACCOUNT_RELEASE_SQL)
    t = step("behavior", t)
    engine.compute_signals(policy.sampling_per_account, lexicon, on_rows=on_signal_rows)
    t = step("signals", t)
    engine.materialize("account_content", ACCOUNT_CONTENT_SQL)
    engine.materialize("unit_stats", UNIT_STATS_SQL, {
        "min_owners": policy.template_min_owners, "min_texts": policy.template_min_texts,
        "min_fresh_share": policy.template_min_fresh_share,
        "min_repeats_per_owner": policy.template_min_repeats_per_owner})
    engine.materialize("account_template", ACCOUNT_TEMPLATE_SQL)
    evidence = _evidence(engine)
    t = step("templates", t)
    community = _link_accounts(engine, evidence, policy)
    t = step("linkage", t)
    if intel is not None:
        community = corroborate(evidence, community, intel(engine, policy), policy)
        t = step("intel", t)
    verdicts, campaigns = judge(evidence, community, policy)
    profiles = _profiles(engine, campaigns)
    t = step("verdict", t)
    n, accounts, first, last = engine.rows(
        "SELECT count(*), count(DISTINCT account_id), min(ts), max(ts) FROM exchanges")[0]
    summary = {"exchanges": n, "accounts": accounts, "quarantined": engine.quarantined(),
               "from": first, "to": last}
    return ScanResult(verdicts, campaigns, profiles, summary, timings)
