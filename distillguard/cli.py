"""The ``distillguard`` command."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.table import Table

from distillguard import __version__
from distillguard.engines import ExchangeStore, IngestReport, store_summary
from distillguard.errors import DistillguardError
from distillguard.logs import discover_log_files
from distillguard.progress import byte_progress
from distillguard.sim import find_corpora_dir, write_sample_log

app = typer.Typer(
    name="distillguard",
    help="Find and stop distillation attacks on LLM APIs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
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


def fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def run_ingest(logs: list[Path], db: Path, *, quiet: bool = False) -> dict[str, Any]:
    """Ingest ``logs`` into ``db``; return the summary (this run and the whole store)."""
    files = discover_log_files(logs)
    if not files and not quiet:
        err.print(f"[yellow]warning:[/] no exchange-log files found in {', '.join(map(str, logs))}")
    bar, advance = byte_progress(files, desc="ingest")
    with bar, ExchangeStore(db) as store:
        report = store.ingest(files, on_progress=advance)
        summary = store_summary(store.con)
        quarantine_file = db.with_name(db.name + ".quarantine.jsonl")
        if summary["quarantined"]:
            store.export_quarantine(quarantine_file)
    summary["db"] = str(db)
    summary["quarantine_file"] = str(quarantine_file) if summary["quarantined"] else None
    summary["run"] = _run_summary(report, len(files))
    return summary


def _run_summary(report: IngestReport, files: int) -> dict[str, Any]:
    return {
        "files": files,
        "files_read": report.files_read,
        "files_skipped_unchanged": len(report.files_skipped),
        "inserted": report.inserted,
        "already_present": report.already_present,
        "quarantined": report.quarantined_total,
        "quarantined_by_code": dict(report.quarantined.most_common()),
    }


def print_summary(summary: dict[str, Any]) -> None:
    run = summary["run"]
    out.print(f"[bold]Ingest[/] into {summary['db']}: {run['files_read']} file(s) read, "
              f"{run['files_skipped_unchanged']} unchanged and skipped; "
              f"{run['inserted']:,} exchanges added, {run['already_present']:,} already present, "
              f"{run['quarantined']:,} quarantined.", highlight=False)
    table = Table(title="Store", show_header=False, title_justify="left")
    table.add_row("exchanges", f"{summary['exchanges']:,}")
    table.add_row("accounts", f"{summary['accounts']:,}")
    table.add_row("time range", f"{summary['from']} .. {summary['to']}")
    models = ", ".join(f"{m} ({n:,})" for m, n in list(summary["models"].items())[:8])
    table.add_row("models", models or "-")
    table.add_row("quarantined", f"{summary['quarantined']:,}")
    out.print(table)
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


@app.command()
def ingest(
    logs: Annotated[list[Path], typer.Argument(help="Exchange-log files or directories "
                                               "(.jsonl, .jsonl.gz, .jsonl.zst, .parquet).")],
    db: Annotated[Path, typer.Option(help="DuckDB database file to load into.")] = DEFAULT_DB,
    json_out: Annotated[Path | None, typer.Option(
        "--json", help="Also write the summary as JSON to this file ('-' for stdout only).")] = None,
) -> None:
    """Load exchange logs into the store, quarantining bad records.

    Re-running on the same files adds nothing; an interrupted run resumes where
    its last commit ended.
    """
    try:
        summary = run_ingest(logs, db)
    except DistillguardError as exc:
        fail(str(exc))
        return
    if json_out is not None and str(json_out) == "-":
        sys.stdout.write(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    print_summary(summary)
    if json_out is not None:
        json_out.write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))


@app.command()
def demo(
    workdir: Annotated[Path, typer.Option(help="Where the demo writes its files.")] = Path(
        "demo-out"),
    corpora: Annotated[Path | None, typer.Option(
        help="The prompt corpora (default: ../shared/corpora).")] = None,
) -> None:
    """Build a small sample log from the corpora, ingest it and print the summary."""
    try:
        corpora_dir = find_corpora_dir(corpora)
        log = write_sample_log(corpora_dir, workdir / "logs" / "sample.jsonl")
        out.print(f"Sample log from {corpora_dir}: {log}", highlight=False)
        summary = run_ingest([log.parent], workdir / "demo.duckdb")
    except DistillguardError as exc:
        fail(str(exc))
        return
    print_summary(summary)


if __name__ == "__main__":
    app()
