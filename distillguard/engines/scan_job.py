"""One scan from input to findings: ingest (when given logs), scan, write findings and report."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson

from distillguard.engines.duckdb_errors import map_duckdb_errors
from distillguard.engines.resources import EngineResources
from distillguard.engines.scan import IntelMatcher, ScanResult, run_scan
from distillguard.engines.spark_session import SparkOptions
from distillguard.engines.sql_engine import DuckDBEngine
from distillguard.engines.store import ExchangeStore
from distillguard.errors import InputError
from distillguard.logs import discover_log_files, split_uris
from distillguard.logs.adapters import SourceOptions, unknown_format_reason
from distillguard.verdict.decisions import Decision, apply_decisions, read_decisions
from distillguard.verdict.findings import build_findings
from distillguard.verdict.policy import Policy, load_policy
from distillguard.verdict.report import findings_markdown

__all__ = ["ScanJob", "find_releases", "load_releases", "remove_stale_workdirs", "run_scan_job"]

UNKNOWN_FORMAT_SHOWN = 10  # file names an error about unknown formats lists
# A scan without --db keeps its store in a temporary folder of this prefix, with the
# scanning process's id in OWNER_FILE.
WORKDIR_PREFIX = "distillguard-scan-"
OWNER_FILE = "owner.pid"


@dataclass
class ScanJob:
    """One scan. ``logs`` are paths (or, for Spark, URIs such as ``s3a://bucket/logs``)."""

    logs: list[str | Path]
    db: Path | None
    out: Path
    releases: Path | None = None
    policy: Path | None = None
    report: Path | None = None
    engine: Literal["duckdb", "spark"] = "duckdb"
    spark: SparkOptions | None = None
    intel: IntelMatcher | None = None  # partners' indicators to match (``intel.IndicatorMatcher``)
    source: SourceOptions = field(default_factory=SourceOptions)  # input format, field map
    # Analysts' decisions (``verdict.decisions``) beside those recorded in the store.
    decisions: tuple[Decision, ...] = ()
    resources: EngineResources = field(default_factory=EngineResources)  # embedded engine only


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


def _scan_on_duckdb(job: ScanJob, policy: Policy, releases: list[dict[str, str]],
                    **callbacks: Any) -> ScanResult:
    workdir = None
    db = job.db
    if db is None:
        remove_stale_workdirs(Path(tempfile.gettempdir()))
        workdir = Path(tempfile.mkdtemp(prefix=WORKDIR_PREFIX))
        (workdir / OWNER_FILE).write_text(str(os.getpid()))
        db = workdir / "scan.duckdb"
    on_progress = callbacks.pop("on_progress", None)
    on_query_progress = callbacks.pop("on_query_progress", None)
    try:
        with ExchangeStore(db, resources=job.resources, source=job.source) as store:
            unknown: list[str] = []
            if job.logs:
                files = discover_log_files(split_uris(job.logs)[0], job.source)
                unknown = store.ingest(files, on_progress=on_progress).files_unknown_format
                _refuse_all_unknown(unknown, len(files))
            engine = DuckDBEngine(store.con, threads=job.resources.thread_count,
                                  memory=job.resources.memory,
                                  on_query_progress=on_query_progress)
            result = run_scan(engine, policy=policy, releases=releases, **callbacks)
            result.files_unknown_format = unknown
            with map_duckdb_errors("cannot read decisions"):
                result.decisions = read_decisions(store.con)
            if result.input["quarantined"]:
                store.export_quarantine(_quarantine_path(job.out))
    finally:
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)
    return result


def remove_stale_workdirs(parent: Path) -> list[Path]:
    """Remove the temporary stores under ``parent`` of scans whose process is gone, and
    return them.

    A scan that ends, or fails, removes its own; one killed outright (by the
    kernel's out-of-memory killer, say) leaves gigabytes behind. Folders without
    an owner file, or whose owner still runs, are left alone.
    """
    removed = []
    for workdir in sorted(parent.glob(f"{WORKDIR_PREFIX}*")):
        try:
            pid = int((workdir / OWNER_FILE).read_text())
        except (OSError, ValueError):
            continue
        if not _process_alive(pid):
            shutil.rmtree(workdir, ignore_errors=True)
            removed.append(workdir)
    return removed


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _refuse_all_unknown(unknown: list[str], files: int) -> None:
    """``InputError`` when no file given is in a format distillguard can tell."""
    if unknown and len(unknown) == files:
        msg = f"{', '.join(unknown[:UNKNOWN_FORMAT_SHOWN])}: {unknown_format_reason()}"
        raise InputError(msg)


def _scan_on_spark(job: ScanJob, policy: Policy, releases: list[dict[str, str]],
                   **callbacks: Any) -> ScanResult:
    from distillguard.engines.spark_session import import_pyspark, spark_session

    import_pyspark()  # without the spark extra, a clear error before the engine's imports
    from distillguard.engines.spark_engine import SparkEngine

    if job.db is not None:
        msg = "--db is the embedded engine's store; the Spark engine reads the logs themselves"
        raise InputError(msg)
    if not job.logs:
        msg = "give exchange logs to scan with --engine spark"
        raise InputError(msg)
    callbacks.pop("on_progress", None)
    callbacks.pop("on_query_progress", None)
    discover_log_files(split_uris(job.logs)[0])  # a missing local path fails before the JVM starts
    started = time.perf_counter()
    spark = spark_session(job.spark or SparkOptions())
    engine = SparkEngine(spark)
    try:
        start_up = time.perf_counter()
        engine.load([str(p) for p in job.logs], job.source)
        loaded = time.perf_counter()
        result = run_scan(engine, policy=policy, releases=releases, **callbacks)
        if result.input["quarantined"]:
            engine.export_quarantine(_quarantine_path(job.out))
    finally:
        engine.close()
        spark.stop()
    result.timings = {"start": round(start_up - started, 3), "load": round(loaded - start_up, 3),
                      **result.timings}
    return result


def _quarantine_path(out: Path) -> Path:
    return out.with_name(out.name + ".quarantine.jsonl")


def run_scan_job(job: ScanJob, *, on_progress: Callable[[Path, int], None] | None = None,
                 on_step: Callable[[str], None] | None = None,
                 on_signal_rows: Callable[[int], None] | None = None,
                 on_signal_total: Callable[[int], None] | None = None,
                 on_query_progress: Callable[[str, float], None] | None = None,
                 ) -> tuple[dict[str, Any], ScanResult]:
    """Run ``job``; write findings (and the report); return the findings and the raw result.

    The callbacks feed progress bars: bytes ingested per file, stages done, exchanges
    through the signals stage (and their total), percent of each table being built.
    """
    if not job.logs and job.db is None:
        msg = "give exchange logs to scan, or --db with a store already ingested"
        raise InputError(msg)
    policy = load_policy(job.policy)
    releases = load_releases(job.releases or find_releases(split_uris(job.logs)[0]))
    scan = _scan_on_spark if job.engine == "spark" else _scan_on_duckdb
    result = scan(job, policy, releases, on_progress=on_progress, on_step=on_step,
                  on_signal_rows=on_signal_rows, on_signal_total=on_signal_total,
                  on_query_progress=on_query_progress, intel=job.intel)
    findings = build_findings(result.verdicts, result.campaigns, result.campaign_profiles,
                              result.input, policy)
    findings = apply_decisions(findings, [*job.decisions, *result.decisions], policy)
    job.out.parent.mkdir(parents=True, exist_ok=True)
    job.out.write_bytes(orjson.dumps(findings, option=orjson.OPT_INDENT_2))
    if job.report is not None:
        job.report.write_text(findings_markdown(findings), encoding="utf-8")
    return findings, result
