"""What each page shows, read from the findings and the dashboard's tables.

A read-only query layer: every query is parameterized (nothing a user types is
ever part of SQL text), each call uses a cursor of its own (pages are served
from several threads), and nothing reads the store's ``exchanges``: an account's
exchanges, a page at a time or searched, come from ``dashboard_exchanges``, sorted
by account, so that only that account's rows are read.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import duckdb
import orjson

from distillguard.dashboard.aggregates import TIE_KINDS
from distillguard.dashboard.highlight import Segment, segments, technique_spans
from distillguard.engines import map_duckdb_errors
from distillguard.signals.lexicon import Lexicon, load_lexicon
from distillguard.verdict.decisions import (
    Decision,
    account_decision,
    in_force,
    match_campaigns,
    read_decisions,
)
from distillguard.verdict.findings import iso
from distillguard.verdict.policy import Policy

__all__ = ["EXCHANGES_PER_PAGE", "GRAPH_ALL_EDGES_UP_TO", "GRAPH_TIES_PER_ACCOUNT",
           "RELEASE_WINDOW", "DashboardQueries", "ExchangePage"]

EXCHANGES_PER_PAGE = 25
# The hours around a release that a campaign page charts.
RELEASE_WINDOW = (timedelta(hours=24), timedelta(hours=72))

# A campaign graph with more ties than this shows each account's strongest few.
GRAPH_ALL_EDGES_UP_TO = 4_000
GRAPH_TIES_PER_ACCOUNT = 4
GRAPH_EDGES_SQL = """
WITH e AS (
    SELECT source, target, kind, detail, count(*) OVER () AS total,
           row_number() OVER (PARTITION BY source ORDER BY weight DESC, target, kind) AS by_source,
           row_number() OVER (PARTITION BY target ORDER BY weight DESC, source, kind) AS by_target
    FROM dashboard_edges WHERE campaign_id = $c)
SELECT source, target, kind, detail, total FROM e
WHERE total <= $all OR by_source <= $k OR by_target <= $k
ORDER BY source, target, kind
"""
_EXCHANGE_COLUMNS = ("ts, request_id, model, input_tokens, output_tokens, status, system, "
                     "prompt, turns, response, conversation_id")
_SEARCHED = "lower(request_id || ' ' || model || ' ' || system || ' ' || prompt)"


class ExchangePage(dict):  # type: ignore[type-arg]
    """One page of an account's exchanges: ``rows``, ``page``, ``pages``, ``total``, ``q``."""


class DashboardQueries:
    """Pages' data over one store connection and the findings of its scan."""

    def __init__(self, con: duckdb.DuckDBPyConnection, findings: dict[str, Any], policy: Policy,
                 *, lexicon: Lexicon | None = None) -> None:
        self.con = con
        self.findings = findings
        self.policy = policy
        self.lexicon = lexicon or load_lexicon()
        self.accounts = {a["account_id"]: a for a in findings["accounts"]}
        self.dismissed = {a["account_id"]: a for a in findings.get("dismissed_accounts", [])}
        self.campaigns = {c["campaign_id"]: c for c in findings["campaigns"]}
        self._graph_json: dict[str, bytes] = {}

    # -- plumbing -----------------------------------------------------------------

    def _rows(self, sql: str, params: list[Any] | dict[str, Any] | None = None) -> list[dict[str, Any]]:
        with map_duckdb_errors("dashboard query failed"):
            cursor = self.con.cursor()
            try:
                result = cursor.execute(sql, params or [])
                names = [d[0] for d in result.description]
                return [dict(zip(names, row, strict=True)) for row in result.fetchall()]
            finally:
                cursor.close()

    def highlighted(self, texts: list[str]) -> list[list[Segment]]:
        """Each text cut into pieces, with the techniques that matched each."""
        return [segments(t, spans) for t, spans in
                zip(texts, technique_spans(texts, self.lexicon), strict=True)]

    # -- decisions ----------------------------------------------------------------

    def decisions(self) -> list[Decision]:
        with map_duckdb_errors("cannot read decisions"):
            return read_decisions(self.con)

    def decisions_in_force(self, decisions: list[Decision] | None = None
                           ) -> tuple[dict[str, Decision], dict[str, Decision]]:
        """The decision in force on each campaign and each listed account of these findings."""
        forced = in_force(self.decisions() if decisions is None else decisions)
        campaigns = match_campaigns(self.findings["campaigns"], forced.values(), self.policy)
        accounts = {}
        for account_id in [*self.accounts, *self.dismissed]:
            d = account_decision(account_id, forced)
            if d is not None:
                accounts[account_id] = d
        return campaigns, accounts

    # -- overview -----------------------------------------------------------------

    def releases(self) -> list[dict[str, Any]]:
        return [{"model": r["model"], "released_at": iso(r["released_at"])}
                for r in self._rows("SELECT model, released_at FROM dashboard_releases "
                                    "ORDER BY released_at")]

    def traffic(self) -> dict[str, Any]:
        """Exchanges per hour: per campaign, and everyone else (series '')."""
        rows = self._rows("SELECT hour, coalesce(campaign_id, '') AS series, "
                          "sum(exchanges) AS n FROM dashboard_traffic GROUP BY ALL ORDER BY hour")
        hours = sorted({r["hour"] for r in rows})
        position = {h: i for i, h in enumerate(hours)}
        series: dict[str, list[int]] = {}
        for r in rows:
            series.setdefault(r["series"], [0] * len(hours))[position[r["hour"]]] = int(r["n"])
        return {"hours": [iso(h) for h in hours], "series": series}

    def overview(self) -> dict[str, Any]:
        accounts = self.findings["accounts"]
        decisions = self.decisions()
        campaign_decisions, account_decisions = self.decisions_in_force(decisions)
        return {
            "input": self.findings["input"],
            "generated_at": self.findings.get("generated_at"),
            "counts": {"extraction": sum(a["verdict"] == "extraction" for a in accounts),
                       "review": sum(a["verdict"] == "review" for a in accounts),
                       "campaigns": len(self.findings["campaigns"]),
                       "decisions": len(in_force(decisions))},
            "campaigns": sorted(self.findings["campaigns"], key=lambda c: -c["score"]),
            "campaign_decisions": campaign_decisions,
            "account_decisions": account_decisions,
            "traffic": self.traffic(),
            "releases": self.releases(),
            "dismissed_campaigns": self.findings.get("dismissed_campaigns", []),
            "dismissed_accounts": self.findings.get("dismissed_accounts", []),
        }

    # -- campaign -----------------------------------------------------------------

    def release_windows(self, campaign_id: str, releases: list[dict[str, Any]]
                        ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Around each release: per hour, the share of the campaign's traffic and of
        everyone else's (outside campaigns) that went to the new model; and the
        campaign's traffic per hour and model."""
        rows = self._rows("SELECT hour, model, "
                          "sum(exchanges) FILTER (WHERE campaign_id = $c) AS c, "
                          "sum(exchanges) FILTER (WHERE campaign_id IS NULL) AS o "
                          "FROM dashboard_traffic GROUP BY ALL ORDER BY hour",
                          {"c": campaign_id})
        hours = sorted({r["hour"] for r in rows})
        by_hour: dict[Any, dict[str, tuple[int, int]]] = {h: {} for h in hours}
        for r in rows:
            by_hour[r["hour"]][r["model"]] = (int(r["c"] or 0), int(r["o"] or 0))
        before, after = RELEASE_WINDOW
        windows = []
        for release in releases:
            released = datetime.fromisoformat(release["released_at"].rstrip("Z"))
            inside = [h for h in hours if released - before <= h < released + after]
            totals = [[sum(v[i] for v in by_hour[h].values()) for i in (0, 1)] for h in inside]
            new = [by_hour[h].get(release["model"], (0, 0)) for h in inside]
            if not any(c for c, _ in totals):
                continue
            windows.append({
                **release, "hours": [iso(h) for h in inside],
                "campaign": [round(n[0] / t[0], 4) if t[0] else None
                             for n, t in zip(new, totals, strict=True)],
                "others": [round(n[1] / t[1], 4) if t[1] else None
                           for n, t in zip(new, totals, strict=True)],
                "campaign_exchanges": [t[0] for t in totals]})
        models = sorted({m for h in hours for m, (c, _) in by_hour[h].items() if c})
        traffic = {"hours": [iso(h) for h in hours],
                   "series": {m: [by_hour[h].get(m, (0, 0))[0] for h in hours] for m in models}}
        return windows, traffic

    def campaign(self, campaign_id: str) -> dict[str, Any] | None:
        c = self.campaigns.get(campaign_id)
        if c is None:
            return None
        members = self._rows("SELECT account_id, verdict, score, exchanges FROM dashboard_nodes "
                             "WHERE campaign_id = ? ORDER BY score DESC, account_id",
                             [campaign_id])
        for m in members:
            m["reason"] = self.accounts.get(m["account_id"], {}).get("reasons", [""])[0]
        samples = self._rows("SELECT account_id, request_id, ts, text FROM dashboard_samples "
                             "WHERE campaign_id = ? ORDER BY rank", [campaign_id])
        if not samples:
            samples = [{"account_id": None, "request_id": None, "ts": None, "text": t}
                       for t in c.get("sample_prompts", [])]
        for s, pieces in zip(samples, self.highlighted([s["text"] for s in samples]),
                             strict=True):
            s["segments"] = pieces
        campaign_decisions, _ = self.decisions_in_force()
        releases = self.releases()
        windows, traffic = self.release_windows(campaign_id, releases)
        return {"campaign": c, "members": members, "samples": samples,
                "windows": windows, "traffic": traffic, "releases": releases,
                "decision": campaign_decisions.get(campaign_id),
                "techniques": [t.name for t in self.lexicon.techniques]}

    def campaign_graph(self, campaign_id: str) -> dict[str, Any] | None:
        """Nodes (accounts) and edges (ties, by kind) of a campaign's graph. A large
        campaign's graph keeps each account's ``GRAPH_TIES_PER_ACCOUNT`` strongest ties
        (an edge stays when it is among either end's); ``edges_total`` counts them all."""
        if campaign_id not in self.campaigns:
            return None
        nodes = self._rows("SELECT account_id AS id, verdict, score, exchanges, x, y "
                           "FROM dashboard_nodes WHERE campaign_id = ? ORDER BY account_id",
                           [campaign_id])
        edges = self._rows(GRAPH_EDGES_SQL, {"c": campaign_id, "k": GRAPH_TIES_PER_ACCOUNT,
                                             "all": GRAPH_ALL_EDGES_UP_TO})
        kinds = sorted({e["kind"] for e in edges}, key=lambda k: (k not in TIE_KINDS, k))
        return {"campaign_id": campaign_id, "nodes": nodes,
                "edges": [[e["source"], e["target"], e["kind"], e["detail"]] for e in edges],
                "edges_total": int(edges[0]["total"]) if edges else 0,
                "kinds": {k: TIE_KINDS.get(k, k.replace("_", " ")) for k in kinds}}

    def campaign_graph_json(self, campaign_id: str) -> bytes | None:
        """``campaign_graph`` as JSON, made once per campaign: the tables it comes from are
        those of one scan, and a campaign of thousands of accounts takes a while to dump."""
        cached = self._graph_json.get(campaign_id)
        if cached is None:
            graph = self.campaign_graph(campaign_id)
            if graph is None:
                return None
            cached = self._graph_json[campaign_id] = orjson.dumps(graph, default=str)
        return cached

    def warm(self) -> None:
        """Make every campaign's graph JSON now, so that no page view waits for it."""
        for campaign_id in self.campaigns:
            self.campaign_graph_json(campaign_id)

    # -- account ------------------------------------------------------------------

    def account_profile(self, account_id: str) -> dict[str, Any] | None:
        """The account's behavior row (None when the store has no such account)."""
        rows = self._rows("SELECT * FROM dashboard_accounts WHERE account_id = ?", [account_id])
        return rows[0] if rows else None

    def account(self, account_id: str) -> dict[str, Any] | None:
        profile = self.account_profile(account_id)
        entry = self.accounts.get(account_id)
        dismissed = self.dismissed.get(account_id)
        if profile is None and entry is None and dismissed is None:
            return None
        links = self._rows(
            "SELECT CASE WHEN source = $a THEN target ELSE source END AS other, kind, detail, "
            "campaign_id FROM dashboard_edges WHERE source = $a OR target = $a "
            "ORDER BY kind, other", {"a": account_id})
        for link in links:
            link["kind_words"] = TIE_KINDS.get(link["kind"], link["kind"])
        _, account_decisions = self.decisions_in_force()
        return {"account_id": account_id, "entry": entry, "dismissed": dismissed,
                "profile": profile, "links": links,
                "decision": account_decisions.get(account_id),
                "campaign": self.campaigns.get((entry or {}).get("campaign_id") or "")}

    def account_exchanges(self, account_id: str, *, page: int = 1, q: str = "",
                          per_page: int = EXCHANGES_PER_PAGE) -> ExchangePage:
        """One page of an account's exchanges, oldest first; ``q`` keeps those whose
        request id, model, system prompt or new turn contain it (any case)."""
        where = "account_id = $a"
        params: dict[str, Any] = {"a": account_id}
        q = q.strip()
        if q:
            where += f" AND contains({_SEARCHED}, lower($q))"
            params["q"] = q
        total = int(self._rows(f"SELECT count(*) AS n FROM dashboard_exchanges WHERE {where}",
                               params)[0]["n"])
        # No pages at all for an account the store does not have; one empty page for
        # a search that finds nothing.
        pages = -(-total // per_page) or int(self.account_profile(account_id) is not None)
        page = min(max(page, 1), max(pages, 1))
        rows = self._rows(f"SELECT {_EXCHANGE_COLUMNS} FROM dashboard_exchanges WHERE {where} "
                          "ORDER BY ts, request_id LIMIT $limit OFFSET $offset",
                          {**params, "limit": per_page, "offset": (page - 1) * per_page})
        texts = [(f"{r['system']}\n" if r["system"] else "") + r["prompt"] for r in rows]
        for r, text, pieces in zip(rows, texts, self.highlighted(texts), strict=True):
            r["text"] = text
            r["segments"] = pieces
            r["ts"] = iso(r["ts"])
        return ExchangePage(rows=rows, page=page, pages=pages, total=total, q=q)
