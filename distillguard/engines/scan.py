"""The batch scan, engine-agnostic: behavior -> signals -> templates -> linkage -> verdict.

``run_scan`` only sequences: it runs each stage's SQL on whichever ``SqlEngine``
is given (DuckDB on one machine, Spark on a cluster), hands the small results
to each stage's functions, and registers what they return as tables for the
next SQL. Every exchange feeds behavior; a stable per-account sample feeds
content signals; candidate accounts are linked by shared templates and
infrastructure; communities are judged as campaigns. What reaches Python is per
account or smaller.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from distillguard.behavior import (
    ACCOUNT_BEHAVIOR_SQL,
    ACCOUNT_CONTENT_SQL,
    ACCOUNT_RELEASE_SQL,
    EXCHANGES_SUMMARY_COLUMNS,
    EXCHANGES_SUMMARY_SQL,
    field_coverage,
    releases_table,
)
from distillguard.engines.sql_engine import SqlEngine
from distillguard.errors import ResourceError
from distillguard.linkage.candidates import (
    ACCOUNT_COMMUNITY_SCHEMA,
    ACCOUNT_EDGE_SCHEMA,
    CANDIDATE_ACTIVITY_SQL,
    CANDIDATE_MODELS_SQL,
    COMMUNITY_UNITS_SCHEMA,
    behavior_affinities,
    behavior_parts,
    candidate_graph,
    candidate_ids,
    candidate_operators,
    candidate_unit_matrix,
    community_table,
    edge_table,
    graph_candidates,
    graph_membership,
)
from distillguard.linkage.template_sql import (
    ACCOUNT_CAMPAIGN_TEMPLATE_SQL,
    ACCOUNT_TEMPLATE_SQL,
    ACCOUNT_UNITS_SQL,
    COMMUNITY_UNITS_SQL,
    TEMPLATE_USES_SQL,
    UNIT_COLUMNS_SQL,
    UNIT_STATS_SQL,
    UNIT_USES_SQL,
)
from distillguard.signals.lexicon import Lexicon, load_lexicon
from distillguard.verdict.campaign_sql import (
    BASELINE_PIVOTS_SQL,
    CAMPAIGN_CAPABILITIES_SQL,
    CAMPAIGN_CREATION_BATCHES_SQL,
    CAMPAIGN_INDICATORS_SQL,
    CAMPAIGN_PIVOTS_SQL,
    CAMPAIGN_SAMPLE_PROMPTS_SQL,
    CAMPAIGN_SPAN_SQL,
    CAMPAIGN_TEMPLATE_USES_SQL,
)
from distillguard.verdict.campaigns import (
    AccountVerdict,
    CampaignVerdict,
    campaign_communities,
    judge,
)
from distillguard.verdict.decisions import Decision
from distillguard.verdict.evidence import (
    ACCOUNT_EVIDENCE_SQL,
    AccountEvidence,
    account_evidence,
    set_campaign_template_shares,
)
from distillguard.verdict.partner_intel import IntelMatches, corroborate
from distillguard.verdict.policy import Policy
from distillguard.verdict.profiles import (
    ProfileRows,
    add_sample_prompts,
    campaign_members_table,
    campaign_profiles,
    pick_sample_prompts,
)

__all__ = ["IntelMatcher", "ScanResult", "run_scan"]

# Matches indicators received from partners against the traffic an engine holds
# (``intel.IndicatorMatcher``); the verdict weighs them (``verdict.partner_intel``).
IntelMatcher = Callable[[SqlEngine, Policy], IntelMatches]


@dataclass
class ScanResult:
    verdicts: list[AccountVerdict]
    campaigns: list[CampaignVerdict]
    campaign_profiles: dict[str, dict[str, Any]]
    input: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)
    # Log files whose format could not be told (quarantined, tried again next run).
    files_unknown_format: list[str] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)  # recorded in the store scanned


def _evidence_of(rows: pa.Table, accounts: pa.ChunkedArray | list[str]) -> list[AccountEvidence]:
    """Python evidence for ``accounts`` only, from the per-account rows (kept in Arrow)."""
    ids = pa.chunked_array([accounts] if isinstance(accounts, list) else accounts.chunks,
                           pa.string())
    keep = pc.is_in(rows.column("account_id"), value_set=ids.combine_chunks())
    return account_evidence(rows.filter(keep))


def _link_accounts(engine: SqlEngine, evidence: list[AccountEvidence], candidates: pa.Table,
                   policy: Policy) -> tuple[dict[str, tuple[int, float]], dict[str, int]]:
    """Link the graph candidates; set campaign template shares; return each candidate's
    community and affinity (empty when no account qualifies), and the operator of each
    account of a community that looks like a campaign (``linkage.operators``)."""
    engine.register("account_community", ACCOUNT_COMMUNITY_SCHEMA.empty_table())
    engine.register("community_units", COMMUNITY_UNITS_SCHEMA.empty_table())
    engine.register("account_edges", ACCOUNT_EDGE_SCHEMA.empty_table())
    if not candidates.num_rows:
        return {}, {}
    engine.register("graph_candidates", candidate_ids(candidates))
    engine.materialize("unit_columns", UNIT_COLUMNS_SQL)
    template_uses = _template_use_rows(engine)
    unit_uses = _arrow_in_parts(engine, ACCOUNT_UNITS_SQL,
                                {"min_owners": policy.template_min_owners}, template_uses)
    activity = engine.arrow(CANDIDATE_ACTIVITY_SQL)
    # the graph and the attribution read it only where they weigh the models view
    models = (engine.arrow(CANDIDATE_MODELS_SQL) if _weighs_models(policy) else None)
    with engine.memory_lent():
        matrix = candidate_unit_matrix(candidates, unit_uses)
        del unit_uses  # the matrix is what the graph reads
        graph = candidate_graph(candidates, matrix, policy.graph, activity, models=models,
                                threads=engine.threads)
        membership = graph_membership(graph)
        behavior, parts = behavior_affinities(graph), behavior_parts(graph)
        for e in evidence:
            e.behavior_affinity = behavior.get(e.account_id, 0.0)
            e.behavior_parts = parts.get(e.account_id, {})
        provisional = campaign_communities(
            evidence, {a: c for a, (c, _) in membership.items()}, policy)
        operators = ({} if matrix is None else candidate_operators(
            candidates, matrix, graph, np.flatnonzero(np.isin(graph.community, list(provisional))),
            activity, models, policy.attribution, policy.graph, threads=engine.threads))
    del matrix, activity, models
    engine.register("account_edges", edge_table(graph))
    engine.register("account_community", community_table(graph, provisional))
    _materialize_in_parts(engine, "community_units", COMMUNITY_UNITS_SQL,
                          {"min_inside_share": policy.community_unit_min_inside_share,
                           "min_owners": policy.template_min_owners}, template_uses)
    set_campaign_template_shares(evidence, dict(engine.rows(ACCOUNT_CAMPAIGN_TEMPLATE_SQL)))
    return membership, operators


def _weighs_models(policy: Policy) -> bool:
    attribution = policy.attribution
    return (policy.graph.behavior_weights.get("models", 0.0) > 0
            or (attribution.min_agreement_ratio > 0
                and attribution.behavior_weights.get("models", 0.0) > 0))


# DuckDB's memory per row in the distinct counts of the template queries run in parts
# (``linkage.template_sql``): 41M unit uses of a scale-0.1 simulation fitted in 250 MB
# (spilling) and not in 150 MB, when owners were counted as strings; with owners
# hashed, the 15.6M log's 4 parts at 16 bytes a use fit as 2 parts at 8 bytes (each
# part re-reads every sampled unit: 173 -> 128 s, findings identical). The need per
# row grows with the input (more distinct units, owners and texts per part), so a
# part that still runs out of memory is split in two, and so on, down to
# ``MAX_PARTS``; a part failing then is a real shortage.
BYTES_PER_UNIT_USE = 8
MAX_PARTS = 1024

T = TypeVar("T")


def _in_parts(run: Callable[[int, int], T], parts: int) -> list[T]:
    """``run(parts, part)`` for each part; a part that runs out of memory is run again as
    two (units of residue +-part modulo parts are those of residue +-part and
    +-(part + parts) modulo 2 * parts)."""
    out: list[T] = []

    def one(parts: int, part: int) -> None:
        try:
            out.append(run(parts, part))
        except ResourceError:
            if 2 * parts > MAX_PARTS:
                raise
            one(2 * parts, part)
            one(2 * parts, part + parts)

    for part in range(parts):
        one(parts, part)
    return out


def _materialize_in_parts(engine: SqlEngine, name: str, sql: str, params: dict[str, Any],
                          rows: int) -> None:
    """Table ``name`` from ``sql`` (a template query with ``$parts``/``$part``), built in
    as many parts as the engine's memory needs for ``rows`` unit uses."""
    numbers = itertools.count()

    def run(parts: int, part: int) -> str:
        table = name if parts == 1 else f"{name}_part{next(numbers)}"
        engine.materialize(table, sql, {**params, "parts": parts, "part": part})
        return table

    tables = _in_parts(run, engine.aggregate_parts(rows, BYTES_PER_UNIT_USE))
    if tables != [name]:
        engine.materialize(name, " UNION ALL ".join(f"SELECT * FROM {t}" for t in tables))


def _arrow_in_parts(engine: SqlEngine, sql: str, params: dict[str, Any], rows: int
                    ) -> pa.Table:
    """The rows of ``sql`` (as ``_materialize_in_parts``) as one Arrow table."""
    return pa.concat_tables(_in_parts(
        lambda parts, part: engine.arrow(sql, {**params, "parts": parts, "part": part}),
        engine.aggregate_parts(rows, BYTES_PER_UNIT_USE)))


def build_unit_stats(engine: SqlEngine, policy: Policy) -> None:
    """Table ``unit_stats`` (the shared template units), in parts as memory needs."""
    _materialize_in_parts(engine, "unit_stats", UNIT_STATS_SQL, {
        "min_owners": policy.template_min_owners, "min_texts": policy.template_min_texts,
        "min_fresh_share": policy.template_min_fresh_share,
        "min_repeats_per_owner": policy.template_min_repeats_per_owner},
        int(engine.rows(UNIT_USES_SQL)[0][0] or 0))


def _template_use_rows(engine: SqlEngine) -> int:
    return int(engine.rows("SELECT count(*) FROM template_uses")[0][0] or 0)


def _profiles(engine: SqlEngine, campaigns: list[CampaignVerdict],
              policy: Policy) -> dict[str, dict[str, Any]]:
    engine.register("campaign_members", campaign_members_table(campaigns))
    profiles = campaign_profiles(campaigns, ProfileRows(
        spans=engine.rows(CAMPAIGN_SPAN_SQL),
        capabilities=engine.rows(CAMPAIGN_CAPABILITIES_SQL),
        indicators=engine.rows(CAMPAIGN_INDICATORS_SQL),
        template_uses=engine.rows(CAMPAIGN_TEMPLATE_USES_SQL),
        creation_batches=engine.rows(CAMPAIGN_CREATION_BATCHES_SQL),
        baseline_pivots=engine.rows(BASELINE_PIVOTS_SQL),
        pivots=engine.rows(CAMPAIGN_PIVOTS_SQL)), policy)
    chosen, picks = pick_sample_prompts(engine.rows(CAMPAIGN_SAMPLE_PROMPTS_SQL), campaigns,
                                        policy.profile_sample_prompts)
    add_sample_prompts(profiles, chosen, engine.exchange_rows(picks),
                       policy.profile_sample_prompt_chars)
    return profiles


def run_scan(engine: SqlEngine, *, policy: Policy, releases: list[dict[str, str]],
             lexicon: Lexicon | None = None,
             on_step: Callable[[str], None] | None = None,
             on_signal_rows: Callable[[int], None] | None = None,
             on_signal_total: Callable[[int], None] | None = None,
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
    engine.register("releases", releases_table(releases))
    engine.materialize("account_behavior", ACCOUNT_BEHAVIOR_SQL)
    engine.materialize("account_release", ACCOUNT_RELEASE_SQL)
    t = step("behavior", t)
    if on_signal_total:
        on_signal_total(engine.rows("SELECT sum(exchanges) FROM account_behavior")[0][0] or 0)
    engine.compute_signals(policy.sampling_per_account, lexicon, on_rows=on_signal_rows,
                           sketch=policy.sketch)
    t = step("signals", t)
    engine.materialize("account_content", ACCOUNT_CONTENT_SQL)
    build_unit_stats(engine, policy)
    engine.materialize("template_uses", TEMPLATE_USES_SQL)
    engine.materialize("account_template", ACCOUNT_TEMPLATE_SQL)
    evidence_rows = engine.arrow(ACCOUNT_EVIDENCE_SQL)
    candidates = graph_candidates(evidence_rows, policy.candidate_min_template_requests)
    # Only accounts that can be judged become Python objects: the graph's candidates
    # (and below, accounts partners' indicators match); the rest stay Arrow rows.
    evidence = _evidence_of(evidence_rows, candidates.column("account_id"))
    t = step("templates", t)
    community, operators = _link_accounts(engine, evidence, candidates, policy)
    t = step("linkage", t)
    if intel is not None:
        matches = intel(engine, policy)
        evidence += _evidence_of(evidence_rows, sorted(
            matches.accounts() - {e.account_id for e in evidence}))
        community = corroborate(evidence, community, matches, policy)
        t = step("intel", t)
    verdicts, campaigns = judge(evidence, community, policy, operators)
    profiles = _profiles(engine, campaigns, policy)
    t = step("verdict", t)
    read = dict(zip(EXCHANGES_SUMMARY_COLUMNS, engine.rows(EXCHANGES_SUMMARY_SQL)[0],
                    strict=True))
    summary = {"exchanges": read["exchanges"], "accounts": read["accounts"],
               "quarantined": engine.quarantined(), "from": read["first"], "to": read["last"],
               **field_coverage(read)}
    return ScanResult(verdicts, campaigns, profiles, summary, timings)
