"""The ``distillguard`` command."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import orjson
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from distillguard import __version__
from distillguard.cli_dashboard import dashboard_command, decisions_command, report_command
from distillguard.cli_intel import intel_app, load_received_intel
from distillguard.engines import (
    DEFAULT_MEMORY,
    EngineResources,
    ExchangeStore,
    IngestReport,
    store_summary,
)
from distillguard.errors import DistillguardError
from distillguard.logs import NotRead, discover_log_files, split_uris, survey_log_files
from distillguard.logs.adapters import (
    INPUT_FORMATS,
    SourceOptions,
    parse_field_map,
    unknown_format_reason,
)
from distillguard.progress import QueryProgress, byte_progress, row_progress
from distillguard.sim import (
    DEFAULT_SCENARIO,
    SimOptions,
    SimReport,
    parse_evasion,
    simulate,
)

app = typer.Typer(
    name="distillguard",
    help="Find and stop distillation attacks on LLM APIs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(intel_app, name="intel")
app.command("dashboard")(dashboard_command)
app.command("report")(report_command)
app.command("decisions")(decisions_command)
out = Console()
err = Console(stderr=True)

DEFAULT_DB = Path("distillguard.duckdb")


def _version(value: bool) -> None:
    if value:
        print(f"distillguard {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Find and stop distillation attacks on LLM APIs."""


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``message`` as one line (never wrapped, brackets kept as written) and exit."""
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


FORMAT_HELP = (f"Input format: {', '.join(INPUT_FORMATS)} (auto: told from each file's first "
               "records; docs/adapters.md).")
MAP_HELP = ("Where a field is read from in another source's records, FIELD=PLACE[,PLACE...] "
            "(repeatable), e.g. account_id=tenant.id,resource.tenant.id (docs/adapters.md).")


def source_options(fmt: str, maps: list[str] | None) -> SourceOptions:
    """The ``--format`` and ``--map`` options as ``SourceOptions`` (exits on a bad one)."""
    try:
        return SourceOptions(fmt, parse_field_map(maps or []))
    except DistillguardError as exc:
        fail(str(exc))


MemoryOption = Annotated[str, typer.Option(
    "--memory", help="Memory the embedded engine may use (e.g. 512MB, 2GB); what does not fit "
                     "spills to --temp-dir. The process needs about 0.5 GB more besides.")]
ThreadsOption = Annotated[int | None, typer.Option(
    "--threads", help="Engine threads (default: one per core); each holds its own buffers.")]
TempDirOption = Annotated[Path | None, typer.Option(
    "--temp-dir", help="Folder the engine spills to (default: <db>.tmp beside the store).")]


def engine_resources(memory: str, threads: int | None, temp_dir: Path | None) -> EngineResources:
    """The engine's resources from the command line (exits with one line if unusable)."""
    try:
        return EngineResources(memory, threads, temp_dir)
    except DistillguardError as exc:
        fail(str(exc))


def run_ingest(logs: list[Path], db: Path, *, quiet: bool = False,
               source: SourceOptions = SourceOptions(),
               resources: EngineResources = EngineResources()) -> dict[str, Any]:
    """Ingest ``logs`` into ``db``; return the summary (this run and the whole store)."""
    survey = survey_log_files(logs, source)
    files = survey.files
    if not files and not quiet:
        err.print(f"[yellow]warning:[/] no exchange-log files found in {', '.join(map(str, logs))}")
    bar, advance = byte_progress(files, desc="ingest")
    with bar, ExchangeStore(db, source=source, resources=resources) as store:
        report = store.ingest(files, on_progress=advance)
        summary = store_summary(store.con)
        quarantine_file = db.with_name(db.name + ".quarantine.jsonl")
        if summary["quarantined"]:
            store.export_quarantine(quarantine_file)
    summary["db"] = str(db)
    summary["quarantine_file"] = str(quarantine_file) if summary["quarantined"] else None
    summary["run"] = _run_summary(report, len(files), survey.not_read)
    return summary


def _run_summary(report: IngestReport, files: int, not_read: list[NotRead]) -> dict[str, Any]:
    return {
        "files": files,
        "files_read": report.files_read,
        "files_skipped_unchanged": len(report.files_skipped),
        "files_unreadable": report.files_unreadable,
        "files_unknown_format": report.files_unknown_format,
        "files_stored_as_is": report.files_stored_as_is,
        "files_not_read": [{"path": n.path, "why": n.why} for n in not_read],
        "inserted": report.inserted,
        "already_present": report.already_present,
        "blank_lines": report.blank_lines,
        "not_exchanges": report.not_exchanges,
        "quarantined": report.quarantined_total,
        "quarantined_by_code": dict(report.quarantined.most_common()),
    }


NOT_READ_SHOWN = 10


def print_summary(summary: dict[str, Any]) -> None:
    run = summary["run"]
    out.print(f"[bold]Ingest[/] into {summary['db']}: {run['files_read']} file(s) read, "
              f"{run['files_skipped_unchanged']} unchanged and skipped; "
              f"{run['inserted']:,} exchanges added, {run['already_present']:,} already present, "
              f"{run['quarantined']:,} quarantined, {run['blank_lines']:,} blank lines skipped.",
              highlight=False)
    if run["not_exchanges"]:
        out.print(f"{run['not_exchanges']:,} record(s) of other sources were not exchanges "
                  "(spans of other operations, embeddings, batch responses read with their "
                  "requests) and were passed over.", highlight=False)
    if run["files_stored_as_is"]:
        out.print(f"{len(run['files_stored_as_is'])} Parquet file(s) fit the store as they are: "
                  "linked and read in place, not re-encoded.", highlight=False)
    if run["files_unreadable"]:
        out.print(f"[yellow]{len(run['files_unreadable'])} file(s) could not be read[/] "
                  "(quarantined as 'unreadable', tried again next run): "
                  + ", ".join(run["files_unreadable"][:NOT_READ_SHOWN]), highlight=False)
    print_unknown_formats(run["files_unknown_format"])
    not_read = run["files_not_read"]
    if not_read:
        out.print(f"{len(not_read)} entr(ies) of the folders given were not read:",
                  highlight=False)
        for n in not_read[:NOT_READ_SHOWN]:
            out.print(f"  {n['path']}: {n['why']}", highlight=False)
        if len(not_read) > NOT_READ_SHOWN:
            out.print(f"  ... and {len(not_read) - NOT_READ_SHOWN} more (all in --json)",
                      highlight=False)
    table = Table(title="Store", show_header=False, title_justify="left")
    table.add_row("exchanges", f"{summary['exchanges']:,}")
    table.add_row("accounts", f"{summary['accounts']:,}")
    table.add_row("time range", f"{summary['from']} .. {summary['to']}")
    models = ", ".join(f"{m} ({n:,})" for m, n in list(summary["models"].items())[:8])
    table.add_row("models", models or "-")
    table.add_row("quarantined", f"{summary['quarantined']:,}")
    out.print(table)
    print_coverage(summary)
    if summary["quarantine_reasons"]:
        reasons = Table(title="Top quarantine reasons", title_justify="left")
        reasons.add_column("code")
        reasons.add_column("count", justify="right")
        reasons.add_column("example")
        for r in summary["quarantine_reasons"]:
            reasons.add_row(r["code"], f"{r['count']:,}", r["example"][:90])
        out.print(reasons)
        out.print(f"Quarantined records (file, line, reason, raw line): "
                  f"{summary['quarantine_file']}", highlight=False)


def print_unknown_formats(paths: list[str]) -> None:
    """The files whose format could not be told, and the formats tried (one line each)."""
    if paths:
        out.print(f"[yellow]{len(paths)} file(s) in no format distillguard can tell[/] "
                  "(quarantined as 'unknown_format', tried again next run): "
                  + ", ".join(paths[:NOT_READ_SHOWN]), highlight=False)
        out.print(unknown_format_reason(), highlight=False, soft_wrap=True)


def print_coverage(summary: dict[str, Any]) -> None:
    """The optional fields no exchange carries and the signals the scan cannot compute."""
    if summary.get("fields_missing"):
        out.print("Fields no exchange carries: " + ", ".join(summary["fields_missing"]),
                  highlight=False)
    for s in summary.get("signals_not_computed") or []:
        out.print(f"[yellow]not computed[/] {s['signal']} (needs {' or '.join(s['needs'])}): "
                  f"{s['effect']}", highlight=False)


@app.command()
def ingest(
    logs: Annotated[list[Path], typer.Argument(
        help="Log files or directories: exchange logs (.jsonl, .jsonl.gz, .jsonl.zst, "
             ".parquet), OTLP JSON spans, LiteLLM logs, OpenAI batch files.")],
    db: Annotated[Path, typer.Option(help="DuckDB database file to load into.")] = DEFAULT_DB,
    json_out: Annotated[Path | None, typer.Option(
        "--json", help="Also write the summary as JSON to this file ('-' for stdout only).")] = None,
    fmt: Annotated[str, typer.Option("--format", help=FORMAT_HELP)] = "auto",
    field_map: Annotated[list[str] | None, typer.Option("--map", help=MAP_HELP)] = None,
    memory: MemoryOption = DEFAULT_MEMORY,
    threads: ThreadsOption = None,
    temp_dir: TempDirOption = None,
) -> None:
    """Load exchange logs into the store, quarantining bad records.

    Re-running on the same files adds nothing; an interrupted run resumes where
    its last commit ended.
    """
    source = source_options(fmt, field_map)
    resources = engine_resources(memory, threads, temp_dir)
    try:
        summary = run_ingest(logs, db, source=source, resources=resources)
    except DistillguardError as exc:
        fail(str(exc))
        return
    if json_out is not None and str(json_out) == "-":
        sys.stdout.write(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    print_summary(summary)
    if json_out is not None:
        json_out.write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))


def _print_simulation(report: SimReport) -> None:
    rate = report.exchanges / report.seconds if report.seconds else 0.0
    strength = f" (strength {report.paraphrase_strength:g})" \
        if report.paraphrase_strength is not None else ""
    out.print(f"[bold]Simulated[/] scenario {report.scenario} at scale {report.scale:g}, seed "
              f"{report.seed}, evasion {', '.join(report.evasion) or 'none'}{strength}, split "
              f"{report.split}: {report.exchanges:,} exchanges from {report.accounts:,} accounts "
              f"in {report.seconds:.1f} s ({rate:,.0f}/s) -> {report.out}", highlight=False)
    table = Table(title="Accounts and exchanges by archetype and actor", title_justify="left")
    for column in ("archetype", "actor", "accounts", "exchanges"):
        table.add_column(column, justify="right" if column in ("accounts", "exchanges") else "left")
    for row in report.by_kind:
        table.add_row(row["kind"], row["actor"] or "-", f"{row['accounts']:,}",
                      f"{row['exchanges']:,}")
    out.print(table)


@app.command("simulate")
def simulate_command(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder to write exchanges/, "
                                          "releases.json and labels.jsonl into.")],
    scenario: Annotated[str, typer.Option(help="Scenario name (feb2026, quiet, evasive) or a "
                                          "scenario .yaml file.")] = DEFAULT_SCENARIO,
    scale: Annotated[float, typer.Option(help="1 is the report's volumes and account "
                                         "counts.")] = 0.01,
    seed: Annotated[int, typer.Option(help="Same seed, same output.")] = 1,
    evasion: Annotated[str | None, typer.Option(
        help="Evasion knobs: all, none, or a list of infra,timing,volume,mixing,templates,"
             "paraphrase (default: the scenario's).")] = None,
    paraphrase_strength: Annotated[str | None, typer.Option(
        help="How much the paraphrase knob rewords: light, medium, heavy or a number in "
             "(0, 1] (default: the scenario's, medium).")] = None,
    split: Annotated[str, typer.Option(help="Attack pipelines and legit items: all, train or "
                                       "test (held-out halves).")] = "all",
    attack_corpora: Annotated[str | None, typer.Option(
        help="Comma-separated distillation corpora feeding the campaigns (overrides "
             "--split for attacks).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="parquet, jsonl or both.")] = "parquet",
    workers: Annotated[int, typer.Option(help="Processes writing parts.")] = 2,
    corpora: Annotated[Path | None, typer.Option(
        help="The prompt corpora (default: ../shared/corpora).")] = None,
    shared_operator: Annotated[str | None, typer.Option(
        help="A campaign of the scenario run by an operator that other simulations share "
             "(same --operator-seed: same pipelines, part of the infrastructure).")] = None,
    operator_seed: Annotated[int, typer.Option(help="The shared operator's seed.")] = 0,
    operator_infra_share: Annotated[float, typer.Option(
        help="Share of the shared operator's groups on its own (shared) infrastructure.")
    ] = 0.5,
) -> None:
    """Write simulated API traffic with campaigns and ground truth labels."""
    try:
        report = simulate(SimOptions(
            out=out_dir, scenario=scenario, scale=scale, seed=seed,
            evasion=None if evasion is None else parse_evasion(evasion), split=split,
            attack_corpora=tuple(c.strip() for c in attack_corpora.split(",") if c.strip())
            if attack_corpora else None, fmt=fmt, workers=workers, corpora=corpora,
            paraphrase_strength=paraphrase_strength, shared_operator=shared_operator,
            operator_seed=operator_seed, operator_infra_share=operator_infra_share))
    except DistillguardError as exc:
        fail(str(exc))
        return
    _print_simulation(report)


DEMO_SCALE = 0.005


@app.command()
def demo(
    workdir: Annotated[Path, typer.Option(help="Where the demo writes its files.")] = Path(
        "demo-out"),
    corpora: Annotated[Path | None, typer.Option(
        help="The prompt corpora (default: ../shared/corpora).")] = None,
) -> None:
    """Simulate traffic with campaigns, ingest it, scan it and score the findings."""
    from distillguard.engines.scan_job import ScanJob, run_scan_job
    from distillguard.evaluate import evaluate_findings, exchanges_per_account, read_labels

    sim_dir, db = workdir / "sim", workdir / "demo.duckdb"
    findings_path, report_path = workdir / "findings.json", workdir / "report.md"
    try:
        report = simulate(SimOptions(out=sim_dir, scale=DEMO_SCALE, seed=1, corpora=corpora))
        _print_simulation(report)
        summary = run_ingest([sim_dir / "exchanges"], db)
        print_summary(summary)
        findings, result = run_scan_job(ScanJob([], db, findings_path,
                                                releases=sim_dir / "releases.json",
                                                report=report_path))
        labels, archetypes = read_labels(sim_dir / "labels.jsonl")
    except DistillguardError as exc:
        fail(str(exc))
        return
    print_scan(findings, findings_path, result.timings)
    out.print(f"Report for analysts: {report_path}", highlight=False)
    out.print("[bold]Against the simulator's ground truth[/]:")
    print_metrics(evaluate_findings(findings, labels, archetypes=archetypes or None,
                                    exchanges=exchanges_per_account([sim_dir / "exchanges"])))


def print_scan(findings: dict[str, Any], out_path: Path, timings: dict[str, float]) -> None:
    accounts = findings["accounts"]
    extraction = sum(a["verdict"] == "extraction" for a in accounts)
    review = len(accounts) - extraction
    inp = findings["input"]
    out.print(f"[bold]Scan[/] of {inp['exchanges']:,} exchanges from {inp['accounts']:,} "
              f"accounts: {len(findings['campaigns'])} campaign(s), {extraction:,} account(s) "
              f"judged extraction, {review:,} for review -> {out_path}", highlight=False)
    table = Table(title="Campaigns", title_justify="left")
    for column in ("campaign", "accounts", "exchanges", "score", "techniques", "new-model pivot"):
        table.add_column(column)
    for c in findings["campaigns"]:
        pivot = max(c["pivots"], key=lambda p: p["exchanges_within_24h"], default=None)
        pivot_words = (f"{pivot['share_within_24h']:.0%} on {pivot['model']} within 24 h "
                       f"(others {pivot['baseline_share_within_24h'] or 0:.0%})") if pivot else "-"
        table.add_row(c["campaign_id"], f"{len(c['accounts']):,}", f"{c['exchanges']:,}",
                      f"{c['score']:.2f}", ", ".join(c["techniques"]) or "-", pivot_words)
    out.print(table)
    if inp.get("quarantined"):
        out.print(f"[yellow]{inp['quarantined']:,} record(s) quarantined[/] (file, line and reason "
                  f"in {out_path.name}.quarantine.jsonl, or the store's)", highlight=False)
    print_coverage(inp)
    out.print("time by stage: " + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()),
              highlight=False)


@app.command()
def scan(
    logs: Annotated[list[str] | None, typer.Argument(
        help="Exchange-log files or directories (for --engine spark also hdfs://, s3a://... "
             "URIs); omit to scan what --db holds.")] = None,
    out_path: Annotated[Path, typer.Option("--out", help="Findings file to write.")] = Path(
        "findings.json"),
    db: Annotated[Path | None, typer.Option(
        help="Store to ingest into and scan (default: a temporary one).")] = None,
    releases: Annotated[Path | None, typer.Option(
        help="Model releases JSON (default: releases.json beside the logs).")] = None,
    policy: Annotated[Path | None, typer.Option(
        help="Detection policy YAML (default: the packaged one).")] = None,
    report: Annotated[Path | None, typer.Option(
        help="Also write a Markdown report for analysts.")] = None,
    engine: Annotated[str, typer.Option(
        help="duckdb (embedded, default) or spark (pip install 'distillguard[spark]').")
    ] = "duckdb",
    spark_master: Annotated[str, typer.Option(
        help="Spark master for --engine spark: local[N], yarn, spark://host:7077.")
    ] = "local[2]",
    spark_remote: Annotated[str | None, typer.Option(
        help="Spark Connect URL (sc://host:15002) instead of --spark-master.")] = None,
    spark_conf: Annotated[list[str] | None, typer.Option(
        help="Extra Spark setting KEY=VALUE (repeatable), e.g. spark.executor.memory=8g.")
    ] = None,
    intel: Annotated[list[Path] | None, typer.Option(
        help="STIX bundle received from partners, or a folder of them (repeatable): their "
             "indicators are matched against the traffic (docs/intel.md).")] = None,
    intel_config: Annotated[Path | None, typer.Option(
        help="Intel config YAML (limits; the secret for partners' payment hashes may also "
             "come from DISTILLGUARD_INTEL_KEY).")] = None,
    fmt: Annotated[str, typer.Option("--format", help=FORMAT_HELP)] = "auto",
    field_map: Annotated[list[str] | None, typer.Option("--map", help=MAP_HELP)] = None,
    memory: MemoryOption = DEFAULT_MEMORY,
    threads: ThreadsOption = None,
    temp_dir: TempDirOption = None,
) -> None:
    """Find extraction accounts and campaigns; write findings.json (and a report).

    Memory is bounded by --memory whatever the size of the logs (docs/scale.md).
    """
    from distillguard.engines.scan_job import ScanJob, run_scan_job
    from distillguard.engines.spark_session import SparkOptions
    from distillguard.intel import IndicatorMatcher, load_intel_config

    if engine not in ("duckdb", "spark"):
        fail(f"unknown engine {engine!r}: use duckdb or spark")
    matcher = None
    if intel:
        try:
            settings = load_intel_config(intel_config)
            received = load_received_intel(intel, settings)
        except DistillguardError as exc:
            fail(str(exc))
            return
        matcher = IndicatorMatcher(received, settings.hasher() if settings.secret else None)
        out.print(f"Partner intel: {len(received.indicators):,} indicators of "
                  f"{len(received.campaigns)} campaign(s) from {len(received.sources)} "
                  "bundle(s)", highlight=False)
    conf = {}
    for item in spark_conf or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            fail(f"--spark-conf wants KEY=VALUE, got {item!r}")
        conf[key.strip()] = value.strip()
    job = ScanJob(list(logs or []), db, out_path, releases, policy, report,
                  engine=engine,  # type: ignore[arg-type]
                  spark=SparkOptions(spark_master, spark_remote, conf), intel=matcher,
                  source=source_options(fmt, field_map),
                  resources=engine_resources(memory, threads, temp_dir))
    try:
        files = discover_log_files(split_uris(job.logs)[0], job.source) \
            if logs and engine == "duckdb" else []
        bar, advance = byte_progress(files, desc="ingest")
        with bar, row_progress(desc="signals") as signal_bar, QueryProgress() as tables:
            findings, result = run_scan_job(
                job, on_progress=advance, on_signal_rows=signal_bar.update,
                on_signal_total=lambda n: setattr(signal_bar, "total", n),
                on_query_progress=tables,
                on_step=(lambda name: err.print(f"{name}: done", highlight=False))
                if engine == "spark" else None)
    except DistillguardError as exc:
        fail(str(exc))
        return
    print_unknown_formats(result.files_unknown_format)
    print_scan(findings, out_path, result.timings)
    if findings.get("decisions"):
        out.print(f"Analysts' decisions applied: {len(findings['decisions'])}; "
                  f"{len(findings.get('dismissed_accounts', [])):,} dismissed account(s) not "
                  "listed again", highlight=False)
    if matcher is not None:
        out.print(matcher.summary(), highlight=False)
    if report is not None:
        out.print(f"Report: {report}", highlight=False)


@app.command("eval")
def eval_command(
    findings_path: Annotated[Path, typer.Option("--findings", help="findings.json to score.")],
    labels_path: Annotated[Path, typer.Option("--labels", help="Ground-truth labels.jsonl.")],
    logs: Annotated[list[Path] | None, typer.Option(
        "--logs", help="The scanned logs, for exchange-weighted recall.")] = None,
    json_out: Annotated[Path | None, typer.Option(
        "--json", help="Also write the metrics as JSON.")] = None,
) -> None:
    """Score findings against ground-truth labels (simulated traffic)."""
    from distillguard.evaluate import evaluate_findings, exchanges_per_account, read_labels

    try:
        findings = orjson.loads(findings_path.read_bytes())
        labels, archetypes = read_labels(labels_path)
        exchanges = exchanges_per_account(logs) if logs else None
    except (OSError, orjson.JSONDecodeError) as exc:
        fail(f"cannot read findings or labels: {exc}")
        return
    except DistillguardError as exc:
        fail(str(exc))
        return
    metrics = evaluate_findings(findings, labels, archetypes=archetypes or None,
                                exchanges=exchanges)
    print_metrics(metrics)
    if json_out is not None:
        json_out.write_bytes(orjson.dumps(metrics, option=orjson.OPT_INDENT_2))


def print_metrics(m: dict[str, Any]) -> None:
    table = Table(title="Accounts", title_justify="left")
    for column in ("level", "flagged", "precision", "recall", "legit FP rate",
                   "exchange recall"):
        table.add_column(column)
    for level in ("extraction", "extraction_or_review"):
        r = m[level]
        table.add_row(level, f"{r['flagged']:,}", _num(r["precision"]), _num(r["recall"]),
                      _num(r["legit_false_positive_rate"]), _num(r.get("exchange_recall")))
    out.print(table)
    actors = Table(title="Campaign actors (operators)", title_justify="left")
    for column in ("actor", "accounts", "extraction", "recall", "groups", "largest group",
                   "in largest campaign"):
        actors.add_column(column)
    for name, a in m["actors"].items():
        actors.add_row(name, f"{a['accounts']:,}", f"{a['extraction']:,}", _num(a["recall"]),
                       str(a["groups"]), _num(a["largest_group_share"]),
                       f"{_num(a['largest_campaign_share'])} ({a['largest_campaign'] or '-'})")
    out.print(actors)
    purity = m["campaign_purity"]
    out.print(f"campaign purity ({purity['weighting']}-weighted share of each campaign's "
              f"majority operator): {_num(purity['purity'])}", highlight=False)
    per = m["extraction"].get("legit_by_archetype")
    if per:
        out.print("legitimate accounts given extraction, by archetype: " + ", ".join(
            f"{k} {v['flagged']}/{v['accounts']}" for k, v in per.items()), highlight=False)
    for gid, g in m["campaign_groups"].items():
        c = purity["campaigns"][gid]
        out.print(f"group {gid}: {g['accounts']:,} accounts, purity {_num(g['purity'])} "
                  f"({g['majority']}), operator share {_num(c['purity'])} "
                  f"({c['operator'] or '-'}) of {c['exchanges']:,} {purity['weighting']}",
                  highlight=False)


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.4f}"


def _secret_token(token_file: Path | None, on_command_line: str | None, *, env: str,
                  option: str, what: str) -> str | None:
    """A secret (bearer token, password: ``what``) from ``--<option>-file`` or the
    environment variable ``env``: never from the command line, which every user of the
    machine can read."""
    if on_command_line is not None:
        fail(f"--{option} is not accepted: a command line is visible to every user of the "
             f"machine. Put the {what} in {env} or in a file readable only by you, passed "
             f"with --{option}-file.")
    if token_file is not None:
        try:
            token = token_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            fail(f"cannot read the {what} file {token_file}: {exc}")
        if not token:
            fail(f"the {what} file {token_file} is empty")
        return token
    return os.environ.get(env) or None


@app.command("gateway")
def gateway_command(
    upstream: Annotated[str, typer.Option(help="Base URL of the model API to forward to.")],
    port: Annotated[int, typer.Option(help="Port of the API.")] = 8080,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    admin_port: Annotated[int, typer.Option(
        help="Port of the admin API and /metrics (0: none).")] = 8081,
    admin_token_file: Annotated[Path | None, typer.Option(
        help="File holding the bearer token the admin API requires (or set "
             "DISTILLGUARD_ADMIN_TOKEN).")] = None,
    admin_token: Annotated[str | None, typer.Option(hidden=True)] = None,
    log_dir: Annotated[Path | None, typer.Option(
        help="Write every exchange here (rotating JSON Lines that `scan` reads).")] = None,
    config: Annotated[Path | None, typer.Option(
        help="Gateway policy YAML (default: the packaged one).")] = None,
    state: Annotated[str, typer.Option(
        help="memory, or a redis:// URL shared by replicas.")] = "memory",
    findings: Annotated[Path | None, typer.Option(
        help="findings.json to use as the watchlist (re-read when it changes).")] = None,
    otlp_endpoint: Annotated[str | None, typer.Option(
        help="Also send every exchange as an OpenTelemetry GenAI span to this OTLP/HTTP "
             "endpoint (base URL, e.g. http://collector:4318; docs/adapters.md).")] = None,
) -> None:
    """Serve an OpenAI- and Anthropic-compatible proxy that scores and acts per request."""
    from distillguard.gateway import GatewayOptions, load_config, run_gateway

    token = _secret_token(admin_token_file, admin_token, env="DISTILLGUARD_ADMIN_TOKEN",
                          option="admin-token", what="admin token")
    try:
        run_gateway(load_config(config), GatewayOptions(
            upstream=upstream, host=host, port=port, admin_port=admin_port or None,
            admin_token=token, log_dir=log_dir, state=state, findings=findings,
            otlp_endpoint=otlp_endpoint))
    except DistillguardError as exc:
        fail(str(exc))


@app.command("collect")
def collect_command(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder of the rotating OTLP JSON files "
                                          "that scan and ingest read.")],
    port: Annotated[int, typer.Option(help="Port of the OTLP/HTTP receiver.")] = 4318,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    max_body_mb: Annotated[float, typer.Option(
        help="Largest request body accepted, in MiB (after gzip).")] = 16.0,
    flush_seconds: Annotated[float, typer.Option(
        help="Longest time a received request waits in memory before reaching the file "
             "(what a kill -9 can lose).")] = 1.0,
    rotate_mb: Annotated[float, typer.Option(help="Start a new file past this size.")] = 64.0,
    rotate_minutes: Annotated[float, typer.Option(
        help="Start a new file after this long.")] = 60.0,
) -> None:
    """Receive OpenTelemetry spans and logs over OTLP/HTTP (protobuf or JSON), as a Collector's
    exporter or an SDK sends them, into rotating files that `scan` reads."""
    from distillguard.logs.adapters.collect_server import run_collect
    from distillguard.logs.adapters.receiver import CollectOptions

    if max_body_mb <= 0 or flush_seconds <= 0 or rotate_mb <= 0 or rotate_minutes <= 0:
        fail("--max-body-mb, --flush-seconds, --rotate-mb and --rotate-minutes must be positive")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        fail(f"cannot create {out_dir}: {exc.strerror or exc}")
    err.print(f"collecting OTLP/HTTP on http://{host}:{port}/v1/traces and /v1/logs into "
              f"{out_dir}", highlight=False)
    run_collect(host, port, CollectOptions(
        out=str(out_dir), max_body_bytes=int(max_body_mb * (1 << 20)),
        flush_seconds=flush_seconds, rotate_bytes=int(rotate_mb * (1 << 20)),
        rotate_seconds=rotate_minutes * 60))


@app.command("upstream-replay")
def upstream_replay_command(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8100,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    reasoning: Annotated[str, typer.Option(
        help="When to return reasoning: requested or always.")] = "requested",
    delay_ms: Annotated[float, typer.Option(help="Think time before each answer.")] = 0.0,
    corpora: Annotated[Path | None, typer.Option(
        help="The prompt corpora (default: ../shared/corpora).")] = None,
) -> None:
    """Serve a demo model API answering from the corpora's reference responses."""
    from distillguard.replay import run_replay

    try:
        run_replay(host, port, corpora=corpora, reasoning=reasoning,
                   delay_seconds=delay_ms / 1000)
    except DistillguardError as exc:
        fail(str(exc))


provenance_app = typer.Typer(
    name="provenance", no_args_is_help=True,
    help="Prove where a text or a model came from: watermark detection, radioactivity "
         "tests, canary checks.")
app.add_typer(provenance_app)

KeyOption = Annotated[str, typer.Option(
    envvar="DISTILLGUARD_WATERMARK_KEY", help="The watermark key (one campaign's key: see "
    "`provenance key`).")]
TokenizerOption = Annotated[Path | None, typer.Option(
    help="tokenizer.json of the generating model (default: the packaged tiny model's).")]
GammaOption = Annotated[float, typer.Option(help="Green share of the vocabulary.")]
WidthOption = Annotated[int, typer.Option(help="Previous tokens seeding the green list.")]


def _read_texts_or_fail(path: Path) -> Any:
    from distillguard.safeguards import read_texts

    texts = read_texts(path)
    for bad in texts.rejected[:5]:
        err.print(f"[yellow]skipped[/] {bad.file}:{bad.line}: {bad.reason}", highlight=False)
    if len(texts.rejected) > 5:
        err.print(f"[yellow]skipped[/] {len(texts.rejected) - 5} more bad line(s)")
    return texts


def _params(gamma: float, context_width: int) -> Any:
    from distillguard.safeguards import WatermarkParams

    return WatermarkParams(gamma=gamma, context_width=context_width)


@provenance_app.command("detect")
def provenance_detect(
    texts_path: Annotated[Path, typer.Argument(
        metavar="TEXTS", help="JSON Lines with a 'text' field per line, or a directory of "
        ".txt files.")],
    key: KeyOption,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object per text.")] = False,
    tokenizer: TokenizerOption = None,
    gamma: GammaOption = 0.25,
    context_width: WidthOption = 1,
    alpha: Annotated[float | None, typer.Option(
        help="Call a text watermarked at p <= this (default: 3.17e-5, the one-sided normal tail "
             "at z = 4).")] = None,
) -> None:
    """Score texts for the watermark of KEY: z-score and p-value per text."""
    from distillguard.safeguards import DEFAULT_ALPHA, TEST_NAME, load_tokenizer, score_texts

    alpha = DEFAULT_ALPHA if alpha is None else alpha
    try:
        params = _params(gamma, context_width)
        texts = _read_texts_or_fail(texts_path)
        scores = score_texts(texts.texts, load_tokenizer(tokenizer), key, params)
    except DistillguardError as exc:
        fail(str(exc))
        return
    if json_out:
        for text_id, score in zip(texts.ids, scores, strict=True):
            sys.stdout.write(orjson.dumps({"id": text_id, **score.as_dict(),
                                           "watermarked": score.watermarked(alpha)}).decode()
                             + "\n")
        return
    table = Table(title=f"Watermark test: {TEST_NAME}; watermarked at p <= {alpha:.3g}",
                  title_justify="left")
    for column in ("text", "tokens", "pairs scored", "green share", "z", "p-value", "watermarked"):
        table.add_column(column, justify="left" if column == "text" else "right")
    for text_id, s in zip(texts.ids, scores, strict=True):
        table.add_row(text_id, f"{s.tokens:,}", f"{s.scored:,}",
                      f"{s.green / s.scored:.3f}" if s.scored else "-", f"{s.z:.2f}",
                      f"{s.p_value:.3g}", "yes" if s.watermarked(alpha) else "no")
    out.print(table)
    flagged = sum(s.watermarked(alpha) for s in scores)
    out.print(f"{flagged} of {len(scores)} text(s) watermarked; {len(texts.rejected)} line(s) "
              "skipped.", highlight=False)


@provenance_app.command("radioactivity")
def provenance_radioactivity(
    outputs_path: Annotated[Path, typer.Argument(
        metavar="OUTPUTS", help="The suspect model's answers: JSON Lines with 'text' (and the "
        "'prompt' that produced it), or a directory of .txt files.")],
    key: KeyOption,
    model: Annotated[Path | None, typer.Option(
        help="With the suspect's weights (a local transformers model directory), also run the "
             "open-model test (needs the provenance extra).")] = None,
    probe: Annotated[Path | None, typer.Option(
        help="Texts to feed the open model (default: the prompts, else the outputs); use "
             "text that does not carry the watermark for an exact test.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    tokenizer: TokenizerOption = None,
    gamma: GammaOption = 0.25,
    context_width: WidthOption = 1,
) -> None:
    """Was a suspect model trained on outputs watermarked with KEY? One pooled p-value."""
    from distillguard.safeguards import TEST_NAME, black_box_test, encode_texts, load_tokenizer

    try:
        params = _params(gamma, context_width)
        tok = load_tokenizer(tokenizer)
        texts = _read_texts_or_fail(outputs_path)
        prompts = [p for p in texts.prompts if p]
        result = {"black_box": black_box_test(encode_texts(tok, texts.texts), key, params,
                                              prompts=encode_texts(tok, prompts)).as_dict()}
        if model is not None:
            fed = _read_texts_or_fail(probe).texts if probe else (prompts or texts.texts)
            result["open_model"] = _open_model_result(model, fed, tok, key, params)
    except DistillguardError as exc:
        fail(str(exc))
        return
    result["test"] = TEST_NAME
    if json_out:
        sys.stdout.write(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    for name in ("black_box", "open_model"):
        if name in result:
            r = result[name]
            out.print(f"[bold]{name.replace('_', ' ')}[/]: {r['scored']:,} distinct pairs scored, "
                      f"green share {r['green_share']:.4f} (chance {gamma}), z = {r['z']:.2f}, "
                      f"p = {r['p_value']:.3g}", highlight=False)
    out.print(f"test: {TEST_NAME}", highlight=False)


def _open_model_result(model_dir: Path, texts: list[str], tok: Any, key: str, params: Any
                       ) -> dict[str, Any]:
    import numpy as np

    try:
        import torch

        from distillguard.safeguards.suspect import load_model
        from distillguard.safeguards.tiny_lm import predict_next
    except ImportError as exc:
        msg = f"the open-model test needs the provenance extra: {exc}"
        raise DistillguardError(msg) from exc
    from distillguard.safeguards import encode_texts, open_model_test

    suspect = load_model(model_dir)
    block = 64
    flat = np.concatenate([np.append(ids, 0) for ids in encode_texts(tok, texts)] or [[]])
    if flat.size < block:
        msg = (f"the texts to feed the model hold {flat.size} tokens, fewer than one row of "
               f"{block}: give more with --probe")
        raise DistillguardError(msg)
    fed = torch.from_numpy(flat[: flat.size // block * block].reshape(-1, block).astype(np.int64))
    return open_model_test(fed.numpy(), predict_next(suspect, fed).numpy(), key, params).as_dict()


def _groups(groups: list[str] | None, groups_file: Path | None) -> list[str]:
    names = list(groups or [])
    if groups_file is not None:
        try:
            raw = groups_file.read_bytes()
        except OSError as exc:
            fail(f"cannot read {groups_file}: {exc}")
        try:
            findings = orjson.loads(raw)
        except orjson.JSONDecodeError:
            names += [line.strip() for line in raw.decode("utf-8", "replace").splitlines()
                      if line.strip()]
        else:
            if not isinstance(findings, dict) or not isinstance(findings.get("accounts"), list):
                fail(f"{groups_file} is JSON but not a findings file (no 'accounts' list)")
            names += [c["campaign_id"] for c in findings.get("campaigns") or []]
            names += [a["account_id"] for a in findings["accounts"] if not a.get("campaign_id")]
    if not names:
        fail("name the account groups: --group G (repeatable) or --groups FILE")
    return list(dict.fromkeys(names))


SecretOption = Annotated[str, typer.Option(envvar="DISTILLGUARD_CANARY_SECRET",
                                           help="The secret the canaries were derived from.")]
GroupOption = Annotated[list[str] | None, typer.Option(
    "--group", help="An account group (campaign id or account id); repeatable.")]
GroupsFileOption = Annotated[Path | None, typer.Option(
    "--groups", help="findings.json (its campaigns, and accounts in none) or a text file "
    "with one group per line.")]


@provenance_app.command("canary-check")
def provenance_canary_check(
    outputs_path: Annotated[Path, typer.Argument(
        metavar="OUTPUTS", help="The suspect model's outputs: JSON Lines with 'text', or a "
        "directory of .txt files.")],
    secret: SecretOption,
    group: GroupOption = None,
    groups_file: GroupsFileOption = None,
    min_hits: Annotated[int, typer.Option(help="Outputs carrying a group's canary needed to "
                                          "name it.")] = 2,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Which account group's canaries does a suspect model reproduce?"""
    from distillguard.safeguards import canary_check, canary_for

    names = _groups(group, groups_file)
    try:
        texts = _read_texts_or_fail(outputs_path)
    except DistillguardError as exc:
        fail(str(exc))
        return
    report = canary_check(texts.texts, [canary_for(secret, g) for g in names], min_hits=min_hits)
    if json_out:
        sys.stdout.write(orjson.dumps({
            "outputs": report.outputs, "groups": report.groups, "min_hits": report.min_hits,
            "named": list(report.named), "ambiguous": list(report.ambiguous),
            "hits": [{"group": h.group, "phrase_hits": h.phrase_hits, "tool_hits": h.tool_hits,
                      "examples": [texts.ids[i] for i in h.examples]} for h in report.hits]},
            option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    for h in report.hits:
        out.print(f"{h.group}: {h.phrase_hits} output(s) with its phrase, {h.tool_hits} with its "
                  f"decoy tool (e.g. {', '.join(texts.ids[i] for i in h.examples)})",
                  highlight=False)
    if report.named:
        out.print(f"[bold red]leaked[/]: {', '.join(report.named)} (at least {min_hits} "
                  f"outputs each, of {report.outputs})", highlight=False)
    else:
        out.print(f"no group named: no canary of {report.groups} group(s) in at least "
                  f"{min_hits} of {report.outputs} output(s)", highlight=False)
    if report.ambiguous:
        out.print(f"[yellow]warning:[/] these groups share a phrase: {', '.join(report.ambiguous)}")


@provenance_app.command("canary-exposure")
def provenance_canary_exposure(
    model: Annotated[Path, typer.Option(
        "--model", help="The suspect's weights: a local transformers model directory "
        "(config.json, weights, tokenizer.json). Nothing is downloaded.")],
    secret: SecretOption,
    reference: Annotated[Path | None, typer.Option(
        "--reference", help="A model that never saw our canaries (the suspect's public base, "
        "or our own), same layout: phrases are ranked by how much likelier the suspect finds "
        "them than it does (far stronger; still exact).")] = None,
    group: GroupOption = None,
    groups_file: GroupsFileOption = None,
    candidates: Annotated[int, typer.Option(help="Random phrases each group's phrase is "
                                            "ranked among.")] = 999,
    alpha: Annotated[float, typer.Option(help="Family-wise error rate: a group is named "
                                         "at p <= alpha / groups.")] = 0.01,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Which account group's signature phrase did a suspect model learn? (its weights)"""
    from distillguard.safeguards import canary_exposure, canary_for

    try:
        from distillguard.safeguards.suspect import load_phrase_scorer
    except ImportError as exc:
        fail(f"the exposure test needs the provenance extra: {exc}")
    names = _groups(group, groups_file)
    if candidates < 1:
        fail("--candidates must be at least 1")
    if not 0 < alpha < 1:
        fail("--alpha must be between 0 and 1")
    try:
        score = load_phrase_scorer(model)
        ref = load_phrase_scorer(reference) if reference is not None else None
    except DistillguardError as exc:
        fail(str(exc))
        return
    exposures = canary_exposure(score, [canary_for(secret, g) for g in names],
                                candidates=candidates, reference=ref)
    threshold = alpha / len(exposures)
    named = [e.group for e in exposures if e.p_value <= threshold]
    if json_out:
        sys.stdout.write(orjson.dumps({
            "groups": len(exposures), "candidates": candidates, "alpha": alpha,
            "reference": reference is not None, "named": named,
            "exposures": [{"group": e.group, "rank": e.rank, "p_value": e.p_value}
                          for e in exposures]}, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    for e in sorted(exposures, key=lambda e: (e.rank, e.group)):
        out.print(f"{e.group}: its phrase ranks {e.rank} of {e.candidates + 1} (p {e.p_value:.4g})",
                  highlight=False)
    if named:
        out.print(f"[bold red]leaked[/]: {', '.join(named)} (p <= {alpha:g} / {len(exposures)} "
                  "groups; exact rank test)", highlight=False)
    else:
        out.print(f"no group named: no phrase ranks at p <= {alpha:g} / {len(exposures)} groups",
                  highlight=False)


@provenance_app.command("canaries")
def provenance_canaries(secret: SecretOption, group: GroupOption = None,
                        groups_file: GroupsFileOption = None) -> None:
    """Show each group's signature phrase and decoy tool."""
    from distillguard.safeguards import canary_for

    for name in _groups(group, groups_file):
        c = canary_for(secret, name)
        out.print(f"{name}: phrase {c.phrase!r}, decoy tool {c.tool_name}", highlight=False)


@provenance_app.command("key")
def provenance_key(
    secret: Annotated[str, typer.Option(envvar="DISTILLGUARD_WATERMARK_SECRET",
                                        help="The watermark secret.")],
    group: Annotated[str, typer.Option(help="Campaign id (or account id).")],
) -> None:
    """Print one group's watermark key (what `detect` and `radioactivity` take)."""
    from distillguard.safeguards import derive_key

    sys.stdout.write(derive_key(secret, group) + "\n")


if __name__ == "__main__":
    app()
