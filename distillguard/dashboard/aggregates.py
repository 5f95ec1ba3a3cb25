"""The dashboard's tables, computed once per scan.

Pages read these tables and the findings, never a pass over every exchange:
only an account's page reads the store's exchanges, one page at a time
(``queries``). ``build_dashboard_tables`` makes them from a store and the
findings of its scan, and records which findings they were built for
(``dashboard_build``), so a dashboard started again on the same findings
starts at once. Tables:

- ``dashboard_members``: each listed account's campaign, verdict and score;
- ``dashboard_traffic``: exchanges per hour, campaign (NULL outside campaigns)
  and model;
- ``dashboard_releases``: model releases (the scan's ``releases`` table, else
  the campaigns' pivots);
- ``dashboard_accounts``: per-account behavior (the scan's ``account_behavior``);
- ``dashboard_edges``: what ties two accounts of a campaign: the scan's account
  graph (``account_edges``: shared templates, payment methods) and, for the
  analyst, shared IPs, client fingerprints and creation times, each with what
  they share;
- ``dashboard_nodes``: each campaign account with a starting layout position;
- ``dashboard_samples``: requests of each campaign that carry its templates;
- ``dashboard_exchanges``: what an account page shows of every exchange (time,
  request id, model, tokens, status, system prompt, new turn, response), sorted by
  account and time, so that an account's page of exchanges, and a search in them,
  reads that account's rows only (DuckDB's zone maps skip all the others) and never
  the store's parts. It is a second copy of the text an account page shows, in the
  store's catalog.
"""

from __future__ import annotations

import hashlib
import itertools
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import duckdb
import igraph
import numpy as np
import pyarrow as pa

from distillguard.behavior import ACCOUNT_BEHAVIOR_SQL
from distillguard.engines import map_duckdb_errors
from distillguard.engines.sql_engine import DuckDBEngine
from distillguard.linkage import shared_value_edges
from distillguard.linkage.template_sql import TEMPLATE_USES_SQL
from distillguard.verdict.campaign_sql import CAMPAIGN_SAMPLE_PROMPTS_SQL
from distillguard.verdict.profiles import prompt_text

__all__ = ["DASHBOARD_TABLES", "TIE_KINDS", "build_dashboard_tables", "findings_key",
           "stored_exchanges", "tables_built_for"]

DASHBOARD_TABLES = ("dashboard_build", "dashboard_members", "dashboard_traffic",
                    "dashboard_releases", "dashboard_accounts", "dashboard_edges",
                    "dashboard_nodes", "dashboard_samples", "dashboard_exchanges")
# Ties between accounts, by the scan's edge kind (``linkage.edge_table``) or one the
# dashboard adds, and how pages name them.
TIE_KINDS = {"content": "shared templates", "payment_fingerprint": "payment method",
             "main_ip": "IP address", "main_client_fingerprint": "client fingerprint",
             "created_together": "created together"}
# Accounts of a campaign opened within this time of each other are tied (as the
# campaign profile's ``created_in_batches`` counts them).
CREATED_TOGETHER = timedelta(minutes=10)
SAMPLES_PER_CAMPAIGN = 8

TRAFFIC_SQL = """
SELECT date_trunc('hour', e.ts) AS hour, m.campaign_id, e.model, count(*) AS exchanges
FROM exchanges e LEFT JOIN dashboard_members m USING (account_id)
GROUP BY ALL ORDER BY hour
"""

ACCOUNT_EXCHANGES_SQL = """
CREATE OR REPLACE TABLE dashboard_exchanges AS
SELECT account_id, ts, request_id, model, input_tokens, output_tokens, status,
       coalesce(system, '') AS system, coalesce(messages[-1].content, '') AS prompt,
       len(messages) AS turns, coalesce(response, '') AS response, conversation_id
FROM exchanges ORDER BY account_id, ts, request_id
"""

# Per campaign account: the characteristic template units its sample carries.
MEMBER_UNITS_SQL = """
SELECT s.account_id, s.unit
FROM (SELECT account_id, unnest(units) AS unit FROM signals
      SEMI JOIN dashboard_members USING (account_id)) s
SEMI JOIN community_units USING (unit)
"""

STORED_SQL = ("SELECT (SELECT coalesce(sum(rows), 0) FROM parts) "
              "+ (SELECT coalesce(sum(rows), 0) FROM linked_parts)")

_DDL = """
DROP TABLE IF EXISTS dashboard_exchange_keys; -- left by older versions (keys only)
CREATE OR REPLACE TABLE dashboard_build (findings_key VARCHAR, generated_at VARCHAR,
    built_at TIMESTAMP, seconds DOUBLE);
CREATE OR REPLACE TABLE dashboard_edges (campaign_id VARCHAR, source VARCHAR, target VARCHAR,
    kind VARCHAR, weight DOUBLE, detail VARCHAR);
CREATE OR REPLACE TABLE dashboard_nodes (campaign_id VARCHAR, account_id VARCHAR,
    verdict VARCHAR, score DOUBLE, exchanges BIGINT, x DOUBLE, y DOUBLE);
CREATE OR REPLACE TABLE dashboard_samples (campaign_id VARCHAR, rank INTEGER,
    account_id VARCHAR, request_id VARCHAR, ts TIMESTAMP, text VARCHAR);
"""


def findings_key(findings_bytes: bytes, stored: int = 0) -> str:
    """What the tables were built for: a hash of the findings file and the number of
    exchanges in the store (exchanges ingested since, and the tables are built again)."""
    return hashlib.sha256(findings_bytes + b"\0" + str(stored).encode()).hexdigest()[:32]


def stored_exchanges(con: duckdb.DuckDBPyConnection) -> int:
    """The exchanges in the store, from its catalog (no pass over them)."""
    with map_duckdb_errors("cannot read the store's catalog"):
        return int(con.execute(STORED_SQL).fetchall()[0][0])


def _has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return bool(con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ?",
                            [name]).fetchall()[0][0])


def tables_built_for(con: duckdb.DuckDBPyConnection) -> str | None:
    """The findings key the dashboard tables were last built for (None: never)."""
    with map_duckdb_errors("cannot read the dashboard tables"):
        if not all(_has_table(con, name) for name in DASHBOARD_TABLES):
            return None
        rows = con.execute("SELECT findings_key FROM dashboard_build").fetchall()
    return rows[0][0] if rows else None


def _register(con: duckdb.DuckDBPyConnection, name: str, table: pa.Table) -> None:
    DuckDBEngine(con).register(name, table)


def _insert(con: duckdb.DuckDBPyConnection, name: str, rows: list[tuple[Any, ...]]) -> None:
    """Append ``rows`` (in the table's column order) to table ``name``."""
    if not rows:
        return
    columns = [r[0] for r in con.execute(f"DESCRIBE {name}").fetchall()]
    incoming = pa.table({c: [r[i] for r in rows] for i, c in enumerate(columns)})  # noqa: F841
    con.execute(f"INSERT INTO {name} SELECT * FROM incoming").fetchall()


def _members(findings: dict[str, Any]) -> pa.Table:
    accounts = findings["accounts"]
    return pa.table({
        "account_id": pa.array([a["account_id"] for a in accounts], pa.string()),
        "campaign_id": pa.array([a.get("campaign_id") for a in accounts], pa.string()),
        "verdict": pa.array([a["verdict"] for a in accounts], pa.string()),
        "score": pa.array([float(a["score"]) for a in accounts], pa.float64())})


def _releases(con: duckdb.DuckDBPyConnection, findings: dict[str, Any]) -> None:
    if _has_table(con, "releases"):
        con.execute("CREATE OR REPLACE TABLE dashboard_releases AS "
                    "SELECT DISTINCT model, released_at FROM releases ORDER BY released_at"
                    ).fetchall()
        return
    seen = {(p["model"], p["released_at"]) for c in findings["campaigns"] for p in c["pivots"]}
    rows = sorted(seen, key=lambda r: r[1])
    _register(con, "dashboard_releases", pa.table({
        "model": pa.array([m for m, _ in rows], pa.string()),
        "released_at": pa.array([datetime.fromisoformat(t.rstrip("Z")) for _, t in rows],
                                pa.timestamp("us"))}))


def _campaign_pairs(members: dict[str, str], pairs: list[tuple[str, str]]
                    ) -> list[tuple[str, str, str]]:
    """(campaign, a, b) for each pair of accounts of one campaign."""
    return [(members[a], a, b) for a, b in pairs
            if a in members and members.get(b) == members[a]]


def _display_ties(accounts: dict[str, dict[str, Any]], members: dict[str, str]
                  ) -> list[tuple[str, str, str, str, float, str]]:
    """Shared IPs, client fingerprints, payment methods and creation times between the
    accounts of each campaign (chained, as ``linkage.shared_value_edges`` ties groups)."""
    by_campaign: dict[str, list[str]] = defaultdict(list)
    for account_id, cid in members.items():
        if account_id in accounts:
            by_campaign[cid].append(account_id)
    ties = []
    for cid, ids in by_campaign.items():
        ids.sort()
        for field in ("payment_fingerprint", "main_ip", "main_client_fingerprint"):
            values = [accounts[a].get(field) for a in ids]
            src, dst = shared_value_edges(values, max_group=len(ids))
            ties += [(cid, ids[s], ids[t], field, 1.0, str(values[s]))
                     for s, t in zip(src.tolist(), dst.tolist(), strict=True)]
        created = sorted((accounts[a]["account_created"], a) for a in ids
                         if accounts[a].get("account_created") is not None)
        for (t0, a), (t1, b) in itertools.pairwise(created):
            if t1 - t0 <= CREATED_TOGETHER:
                gap = int((t1 - t0).total_seconds())
                ties.append((cid, a, b, "created_together", 1.0,
                             f"opened {gap // 60} min {gap % 60} s apart"))
    return ties


def _edges(con: duckdb.DuckDBPyConnection, members: dict[str, str],
           accounts: dict[str, dict[str, Any]]) -> list[tuple[str, str, str, str, float, str]]:
    edges: list[tuple[str, str, str, str, float, str]] = []
    seen: set[tuple[str, str, str]] = set()
    units: dict[str, set[int]] = defaultdict(set)
    if _has_table(con, "signals") and _has_table(con, "community_units"):
        for account_id, unit in con.execute(MEMBER_UNITS_SQL).fetchall():
            units[account_id].add(unit)
    graph = (con.execute("SELECT source, target, kind, weight FROM account_edges").fetchall()
             if _has_table(con, "account_edges") else [])
    for source, target, kind, weight in graph:
        cid = members.get(source)
        if cid is None or members.get(target) != cid:
            continue
        a, b = sorted((source, target))
        if kind == "content":
            shared = len(units[a] & units[b])
            detail = (f"{shared} characteristic template(s) in common; "
                      f"similarity {weight:.2f}") if shared else f"similarity {weight:.2f}"
        else:
            detail = str(accounts.get(a, {}).get(kind, ""))
        edges.append((cid, a, b, kind, float(weight), detail))
        seen.add((a, b, kind))
    for cid, s, t, kind, weight, detail in _display_ties(accounts, members):
        a, b = sorted((s, t))
        if (a, b, kind) not in seen:
            seen.add((a, b, kind))
            edges.append((cid, a, b, kind, weight, detail))
    return edges


def _layout(ids: list[str], edges: list[tuple[str, str, str, str, float, str]]
            ) -> np.ndarray:
    """Starting positions in [0, 1]^2 (Fruchterman-Reingold); the page's force layout
    takes it from there."""
    if len(ids) < 2:
        return np.full((len(ids), 2), 0.5)
    index = {a: i for i, a in enumerate(ids)}
    pairs = sorted({(index[s], index[t]) for _, s, t, *_ in edges})
    graph = igraph.Graph(n=len(ids), edges=pairs)
    coords = np.array(graph.layout_fruchterman_reingold(niter=200, seed=None,
                                                        grid="auto").coords, dtype=float)
    low, high = coords.min(axis=0), coords.max(axis=0)
    return (coords - low) / np.where(high > low, high - low, 1.0)


def _samples(con: duckdb.DuckDBPyConnection, members: dict[str, str], per_campaign: int
             ) -> list[tuple[str, int, str, str, Any, str]]:
    if not (_has_table(con, "signals") and _has_table(con, "community_units")):
        return []
    if not _has_table(con, "template_uses") and _has_table(con, "unit_stats"):
        con.execute(f"CREATE TABLE template_uses AS {TEMPLATE_USES_SQL}")  # older scans
    if not _has_table(con, "template_uses"):
        return []
    chosen: dict[str, list[tuple[str, str, Any]]] = defaultdict(list)
    seen: set[str] = set()
    for account_id, request_id, ts in con.execute(CAMPAIGN_SAMPLE_PROMPTS_SQL).fetchall():
        cid = members.get(account_id)
        if cid and account_id not in seen and len(chosen[cid]) < per_campaign:
            chosen[cid].append((account_id, request_id, ts))
            seen.add(account_id)
    picks = [(r, ts) for rows in chosen.values() for _, r, ts in rows]
    texts = {r: prompt_text(system, messages)
             for r, system, messages in DuckDBEngine(con).exchange_rows(picks)}
    return [(cid, rank, a, r, ts, texts[r]) for cid, rows in chosen.items()
            for rank, (a, r, ts) in enumerate(rows) if texts.get(r)]


def _account_exchanges(con: duckdb.DuckDBPyConnection) -> None:
    """``dashboard_exchanges``, written with zstd: prompts compress about 7x better than
    with DuckDB's default string compression (10.6 GB -> about 1 GB for 4.47M
    exchanges of 1.9 KB), for the price of decompressing a block per page read."""
    con.execute("SET force_compression = 'zstd'").fetchall()
    try:
        con.execute(ACCOUNT_EXCHANGES_SQL).fetchall()
        con.execute("CHECKPOINT").fetchall()
    finally:
        con.execute("RESET force_compression").fetchall()


def build_dashboard_tables(con: duckdb.DuckDBPyConnection, findings: dict[str, Any], key: str,
                           *, samples_per_campaign: int = SAMPLES_PER_CAMPAIGN,
                           on_step: Callable[[str], None] | None = None) -> float:
    """Build every dashboard table for ``findings`` (identified by ``key``) from the
    store ``con`` holds; return the seconds it took."""
    started = time.perf_counter()
    step = on_step or (lambda _name: None)
    with map_duckdb_errors("cannot build the dashboard tables"):
        con.execute(_DDL).fetchall()
        _register(con, "dashboard_members", _members(findings))
        members = {a["account_id"]: a["campaign_id"] for a in findings["accounts"]
                   if a.get("campaign_id")}
        step("traffic")
        con.execute(f"CREATE OR REPLACE TABLE dashboard_traffic AS {TRAFFIC_SQL}").fetchall()
        _releases(con, findings)
        step("accounts")
        # The scan's per-account figures, unless exchanges were stored after it (then each
        # account's count and time span are computed again, so its pages show them all).
        behavior = ("account_behavior" if _has_table(con, "account_behavior")
                    and stored_exchanges(con) == findings["input"].get("exchanges") else None)
        con.execute("CREATE OR REPLACE TABLE dashboard_accounts AS "
                    + (f"SELECT * FROM {behavior}" if behavior else ACCOUNT_BEHAVIOR_SQL)
                    ).fetchall()
        cursor = con.execute("SELECT * FROM dashboard_accounts SEMI JOIN dashboard_members "
                             "USING (account_id)")
        columns = [d[0] for d in cursor.description]
        accounts = {row[0]: dict(zip(columns, row, strict=True)) for row in cursor.fetchall()}
        step("graph")
        edges = _edges(con, members, accounts)
        _insert(con, "dashboard_edges", edges)
        by_campaign: dict[str, list[str]] = defaultdict(list)
        for account_id, cid in sorted(members.items()):
            by_campaign[cid].append(account_id)
        edges_of: dict[str, list[tuple[str, str, str, str, float, str]]] = defaultdict(list)
        for e in edges:
            edges_of[e[0]].append(e)
        verdicts = {a["account_id"]: a for a in findings["accounts"]}
        nodes = []
        for cid, ids in by_campaign.items():
            positions = _layout(ids, edges_of[cid])
            nodes += [(cid, a, verdicts[a]["verdict"], float(verdicts[a]["score"]),
                       int(accounts.get(a, {}).get("exchanges", 0)), float(x), float(y))
                      for a, (x, y) in zip(ids, positions, strict=True)]
        _insert(con, "dashboard_nodes", nodes)
        step("account exchanges")
        _account_exchanges(con)
        step("samples")
        samples = _samples(con, members, samples_per_campaign)
        _insert(con, "dashboard_samples", samples)
        seconds = time.perf_counter() - started
        con.execute("INSERT INTO dashboard_build VALUES (?, ?, now()::TIMESTAMP, ?)",
                    [key, findings.get("generated_at"), seconds]).fetchall()
    return seconds
