"""Pages as HTML: the Jinja environment, its filters, and the self-contained report.

Autoescaping is on for every template: whatever an attacker wrote (prompts,
account ids, notes) reaches the page as text. Highlights are built from
``highlight.Segment`` pieces, each escaped; data for charts and graphs goes in
``<script type="application/json">`` blocks through ``tojson`` (which escapes
``<``, ``>`` and ``&``), never into script code.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from functools import lru_cache
from importlib import resources
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
from markupsafe import Markup

from distillguard import __version__
from distillguard.dashboard.queries import DashboardQueries
from distillguard.verdict.profiles import INDICATOR_KINDS

__all__ = ["SCRIPTS", "account_url", "render_page", "render_report"]

SCRIPTS = ("charts.js", "graph.js")
SERIES_COLORS = ("#c7362f", "#2f5bea", "#b7791f", "#6b4fd8", "#0f8b8d", "#d0488f", "#23804a")
OTHERS_COLOR = "#c5ccd8"
# Campaigns charted one by one on the overview; the rest are summed.
MAX_SERIES = 6
MAX_MEMBERS_LISTED = 300
INDICATOR_LABELS = {"ips": "IP addresses", "asns": "ASNs", "payment_fingerprints": "payment methods",
                    "client_fingerprints": "client fingerprints", "templates": "template units"}


def account_url(account_id: str) -> str:
    return "/accounts/" + quote(account_id, safe="")


def _num(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int | float) else "\u2013" if value is None else str(value)


def _pct(value: Any) -> str:
    return "\u2013" if value is None else f"{float(value):.0%}"


def _when(value: Any, seconds: bool = False) -> str:
    """'2026-02-23 14:05 UTC' from RFC 3339 text or a naive-UTC datetime."""
    if value is None or value == "":
        return "\u2013"
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M") + " UTC"


def _figure(value: Any, key: str = "", share: bool = False) -> str:
    """A figure of an account as the page shows it (shares as percentages)."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and (share or "share" in key):
        return f"{value:.0%}"
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, datetime):
        return _when(value)
    return str(value)


def _best_pivot(campaign: dict[str, Any]) -> dict[str, Any] | None:
    return max(campaign.get("pivots", []), key=lambda p: p.get("exchanges_within_24h", 0),
               default=None)


def _pivot_for(campaign: dict[str, Any], model: str) -> dict[str, Any] | None:
    return next((p for p in campaign.get("pivots", []) if p["model"] == model), None)


def _window_spec(window: dict[str, Any]) -> dict[str, Any]:
    return {"hours": window["hours"], "releases": [{"model": window["model"],
                                                    "released_at": window["released_at"]}],
            "lines": [{"label": "campaign", "color": SERIES_COLORS[0], "values": window["campaign"]},
                      {"label": "everyone else", "color": "#7a8699", "values": window["others"]}]}


def traffic_spec(traffic: dict[str, Any], campaigns: list[dict[str, Any]],
                 releases: list[dict[str, Any]]) -> dict[str, Any]:
    """The overview chart: the top campaigns one by one, other campaigns summed, everyone
    else at the bottom."""
    named = [c["campaign_id"] for c in campaigns[:MAX_SERIES]]
    hours = traffic["hours"]
    series = {name: traffic["series"].get(name, [0] * len(hours)) for name in named}
    rest = [0] * len(hours)
    for name, values in traffic["series"].items():
        if name and name not in series:
            rest = [a + b for a, b in zip(rest, values, strict=True)]
    order = ["", *(["other campaigns"] if any(rest) else []), *reversed(named)]
    series[""] = traffic["series"].get("", [0] * len(hours))
    series["other campaigns"] = rest
    colors = {"": OTHERS_COLOR, "other campaigns": "#9aa3b5",
              **{name: SERIES_COLORS[i % len(SERIES_COLORS)] for i, name in enumerate(named)}}
    labels = {"": "everyone else", "other campaigns": "other campaigns",
              **{name: f"campaign {name}" for name in named}}
    return {"hours": hours, "series": {k: series[k] for k in order}, "order": order,
            "colors": {k: colors[k] for k in order}, "labels": {k: labels[k] for k in order},
            "releases": releases}


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("distillguard.dashboard", "templates"),
                             autoescape=True, undefined=jinja2.ChainableUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters.update(num=_num, pct=_pct, when=_when, figure=_figure)
    env.globals.update(best_pivot=_best_pivot, pivot_for=_pivot_for, window_spec=_window_spec,
                       version=__version__, max_members=MAX_MEMBERS_LISTED,
                       indicator_kinds=[(k, INDICATOR_LABELS.get(k, k)) for k in INDICATOR_KINDS])
    return env


def _context(queries: DashboardQueries, standalone: bool) -> dict[str, Any]:
    techniques = [t.name for t in queries.lexicon.techniques]
    classes = {t: f"t{i % 8}" for i, t in enumerate(techniques)}
    return {"standalone": standalone, "techniques": techniques,
            "technique_class": lambda name: classes.get(name, "t7"),
            "findings_generated_at": queries.findings.get("generated_at"),
            "account_url": account_url,
            "campaign_url": (lambda cid: f"#campaign-{cid}") if standalone
            else (lambda cid: "/campaigns/" + quote(cid, safe=""))}


def render_page(template: str, queries: DashboardQueries, **context: Any) -> str:
    """One dashboard page (scripts and styles served from /static)."""
    return environment().get_template(template).render(
        **{"nav": "", **_context(queries, standalone=False), "scripts": SCRIPTS, **context})


def _asset(name: str) -> str:
    return resources.files("distillguard.dashboard").joinpath("static", name).read_text("utf-8")


def _csp_hash(script: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"


def render_report(queries: DashboardQueries) -> str:
    """Every campaign page and the overview as one self-contained HTML file: styles,
    scripts and graph data inline, no request to anything; its Content-Security-Policy
    lets only its own scripts run (by hash)."""
    overview = queries.overview()
    campaigns = []
    for c in overview["campaigns"]:
        data = queries.campaign(c["campaign_id"])
        if data is not None:
            campaigns.append({**data, "graph": queries.campaign_graph(c["campaign_id"])})
    scripts = [_asset(name) for name in SCRIPTS]
    csp = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
           f"script-src {' '.join(_csp_hash(s) for s in scripts)}")
    return environment().get_template("report.html").render(
        **_context(queries, standalone=True), o=overview,
        traffic_spec=traffic_spec(overview["traffic"], overview["campaigns"],
                                  overview["releases"]),
        campaigns=campaigns, inline_css=Markup(_asset("app.css")),
        inline_scripts=[Markup(s) for s in scripts], report_csp=csp,
        report_generated_at=_when(datetime.now(UTC)))


def page_url(base: str, **params: Any) -> str:
    kept = {k: v for k, v in params.items() if v not in (None, "", 1)}
    return base + (f"?{urlencode(kept)}" if kept else "") + "#exchanges"
