"""Opening a store and its findings for the dashboard, and serving it.

``open_dashboard`` reads the findings, opens the store (read-write: decisions
are written to it), and builds the dashboard's tables when they were built for
other findings (or never). The store stays open while the dashboard runs, so a
scan of the same store waits until it stops.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import uvicorn

from distillguard.dashboard.aggregates import (
    build_dashboard_tables,
    findings_key,
    stored_exchanges,
    tables_built_for,
)
from distillguard.dashboard.app import dashboard_app
from distillguard.dashboard.queries import DashboardQueries
from distillguard.engines import ExchangeStore, map_duckdb_errors
from distillguard.errors import InputError
from distillguard.verdict.decisions import Decision, read_decisions
from distillguard.verdict.findings import FINDINGS_FORMAT
from distillguard.verdict.policy import load_policy

__all__ = ["DashboardOptions", "OpenDashboard", "load_decisions", "loopback_hosts",
           "open_dashboard", "read_findings", "run_dashboard"]

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")


@dataclass
class DashboardOptions:
    db: Path
    findings: Path
    host: str = "127.0.0.1"
    port: int = 8800
    token: str | None = None
    policy: Path | None = None
    analyst: str = ""
    rebuild: bool = False


@dataclass
class OpenDashboard:
    """A store opened for the dashboard with its findings' tables built."""

    store: ExchangeStore
    queries: DashboardQueries
    built_seconds: float | None  # None: the tables were already there

    def close(self) -> None:
        self.store.close()


def read_findings(path: Path) -> tuple[dict[str, Any], bytes]:
    """The findings file (format v1) and its bytes; ``InputError`` when it is not one."""
    try:
        raw = path.read_bytes()
        findings = orjson.loads(raw)
    except (OSError, orjson.JSONDecodeError) as exc:
        msg = f"cannot read findings {path}: {exc}"
        raise InputError(msg) from exc
    if not isinstance(findings, dict) or findings.get("format") != FINDINGS_FORMAT or not all(
            k in findings for k in ("input", "accounts", "campaigns")):
        msg = f"{path} is not a findings file ({FINDINGS_FORMAT})"
        raise InputError(msg)
    return findings, raw


def open_dashboard(db: Path, findings_path: Path, *, policy: Path | None = None,
                   rebuild: bool = False,
                   on_step: Callable[[str], None] | None = None) -> OpenDashboard:
    if not db.exists():
        msg = f"no store at {db}: give the --db the scan used"
        raise InputError(msg)
    findings, raw = read_findings(findings_path)
    loaded_policy = load_policy(policy)
    store = ExchangeStore(db)
    try:
        key = findings_key(raw, stored_exchanges(store.con))
        built = None
        if rebuild or tables_built_for(store.con) != key:
            built = build_dashboard_tables(store.con, findings, key, on_step=on_step)
        queries = DashboardQueries(store.con, findings, loaded_policy)
        queries.warm()
        return OpenDashboard(store, queries, built)
    except BaseException:
        store.close()
        raise


def load_decisions(db: Path) -> list[Decision]:
    """The decisions recorded in a store (none when there is no store yet)."""
    if not db.exists():
        return []
    with ExchangeStore(db) as store, map_duckdb_errors("cannot read decisions"):
        return read_decisions(store.con)


def loopback_hosts(host: str) -> tuple[str, ...] | None:
    """The Host names a server bound to ``host`` answers: loopback names for a loopback
    address, any (None) otherwise."""
    if host == "localhost":
        return LOOPBACK_NAMES
    try:
        return LOOPBACK_NAMES if ipaddress.ip_address(host).is_loopback else None
    except ValueError:
        return (host.lower(),)


def run_dashboard(options: DashboardOptions, *,
                  on_step: Callable[[str], None] | None = None,
                  on_ready: Callable[[OpenDashboard], None] | None = None) -> None:
    """Open the store and serve the dashboard until interrupted."""
    allowed = loopback_hosts(options.host)
    if allowed is not LOOPBACK_NAMES and options.token is None:
        msg = (f"serving on {options.host} (not loopback) needs a token: set "
               "DISTILLGUARD_DASHBOARD_TOKEN or give --token-file")
        raise InputError(msg)
    opened = open_dashboard(options.db, options.findings, policy=options.policy,
                            rebuild=options.rebuild, on_step=on_step)
    try:
        app = dashboard_app(opened.queries, token=options.token, allowed_hosts=allowed,
                            analyst=options.analyst)
        if on_ready is not None:
            on_ready(opened)
        uvicorn.Server(uvicorn.Config(app, host=options.host, port=options.port,
                                      log_level="warning", lifespan="off")).run()
    finally:
        opened.close()
