"""The analysts' web view of findings: campaigns, evidence, decisions."""

from distillguard.dashboard.aggregates import (
    DASHBOARD_TABLES,
    TIE_KINDS,
    build_dashboard_tables,
    findings_key,
    stored_exchanges,
    tables_built_for,
)
from distillguard.dashboard.app import dashboard_app
from distillguard.dashboard.decisions import decision_labels, record_decision
from distillguard.dashboard.highlight import Segment, Span, segments, technique_spans
from distillguard.dashboard.queries import DashboardQueries, ExchangePage
from distillguard.dashboard.render import render_page, render_report
from distillguard.dashboard.security import CONTENT_SECURITY_POLICY, DashboardGuard, FormTokens
from distillguard.dashboard.server import (
    DashboardOptions,
    OpenDashboard,
    load_decisions,
    open_dashboard,
    read_findings,
    run_dashboard,
)

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "DASHBOARD_TABLES",
    "TIE_KINDS",
    "DashboardGuard",
    "DashboardOptions",
    "DashboardQueries",
    "ExchangePage",
    "FormTokens",
    "OpenDashboard",
    "Segment",
    "Span",
    "build_dashboard_tables",
    "dashboard_app",
    "decision_labels",
    "findings_key",
    "load_decisions",
    "open_dashboard",
    "read_findings",
    "record_decision",
    "render_page",
    "render_report",
    "run_dashboard",
    "segments",
    "stored_exchanges",
    "tables_built_for",
    "technique_spans",
]
