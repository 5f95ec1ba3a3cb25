"""One scan from input to findings: ingest (when given logs), scan, write findings and report."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from distillguard.engines.scan import ScanResult, run_scan
from distillguard.engines.store import ExchangeStore
from distillguard.errors import InputError
from distillguard.logs import discover_log_files
from distillguard.verdict.findings import build_findings
from distillguard.verdict.policy import load_policy
from distillguard.verdict.report import findings_markdown

__all__ = ["ScanJob", "find_releases", "load_releases", "run_scan_job"]

SCAN_MEMORY_LIMIT = "768MB"


@dataclass
class ScanJob:
    logs: list[Path]
    db: Path | None
    out: Path
    releases: Path | None = None
    policy: Path | None = None
    report: Path | None = None


def find_releases(logs: list[Path]) -> Path | None:
    """``releases.json`` beside or inside the first log path, as the simulator writes it."""
    for path in logs:
        for candidate in (path / "releases.json", path.parent / "releases.json"):
            if candidate.is_file():
                return candidate
    return None


def load_releases(path: Path | None) -> list[dict[str, str]]:
    if path is None:
        return []
    try:
        data = orjson.loads(path.read_bytes())
        return [{"model": str(r["model"]), "released_at": str(r["released_at"])} for r in data]
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError) as exc:
        msg = f"cannot read model releases from {path}: {exc}"
        raise InputError(msg) from exc


def run_scan_job(job: ScanJob, *, on_progress: Callable[[Path, int], None] | None = None,
                 on_step: Callable[[str], None] | None = None,
                 on_signal_rows: Callable[[int], None] | None = None,
                 ) -> tuple[dict[str, Any], ScanResult]:
    """Run ``job``; write findings (and the report); return the findings and the raw result."""
    if not job.logs and job.db is None:
        msg = "give exchange logs to scan, or --db with a store already ingested"
        raise InputError(msg)
    policy = load_policy(job.policy)
    releases = load_releases(job.releases or find_releases(job.logs))
    workdir = None
    db = job.db
    if db is None:
        workdir = Path(tempfile.mkdtemp(prefix="distillguard-scan-"))
        db = workdir / "scan.duckdb"
    try:
        with ExchangeStore(db, memory_limit=SCAN_MEMORY_LIMIT) as store:
            if job.logs:
                store.ingest(discover_log_files(job.logs), on_progress=on_progress)
            result = run_scan(store, policy=policy, releases=releases, on_step=on_step,
                              on_signal_rows=on_signal_rows)
            if store.con.execute("SELECT count(*) FROM quarantine").fetchone()[0]:
                store.export_quarantine(job.out.with_name(job.out.name + ".quarantine.jsonl"))
    finally:
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)
    findings = build_findings(result.verdicts, result.campaigns, result.campaign_profiles,
                              result.input, policy)
    job.out.parent.mkdir(parents=True, exist_ok=True)
    job.out.write_bytes(orjson.dumps(findings, option=orjson.OPT_INDENT_2))
    if job.report is not None:
        job.report.write_text(findings_markdown(findings), encoding="utf-8")
    return findings, result
