"""``distillguard dashboard``, ``report`` and ``decisions``: the analysts' commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.table import Table

from distillguard.errors import DistillguardError

__all__ = ["dashboard_command", "decisions_command", "report_command"]

out = Console()
err = Console(stderr=True)
TOKEN_ENV = "DISTILLGUARD_DASHBOARD_TOKEN"

Db = Annotated[Path, typer.Option(help="The store the scan used (--db of `scan`).")]
FindingsPath = Annotated[Path, typer.Option("--findings", help="findings.json of that scan.")]
PolicyPath = Annotated[Path | None, typer.Option(
    help="Detection policy YAML the scan used (default: the packaged one).")]


def _step(name: str) -> None:
    err.print(f"dashboard tables: {name}...", highlight=False)


def dashboard_command(
    db: Db,
    findings: FindingsPath,
    host: Annotated[str, typer.Option(help="Address to listen on (loopback unless told "
                                      "otherwise; any other needs a token).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8800,
    token: Annotated[str | None, typer.Option(
        help=f"Require this token on every page and API call (visible to other users of the "
             f"machine: prefer {TOKEN_ENV} or --token-file).")] = None,
    token_file: Annotated[Path | None, typer.Option(
        help="File holding the token to require.")] = None,
    analyst: Annotated[str, typer.Option(help="Name recorded with decisions by default.")] = "",
    policy: PolicyPath = None,
    rebuild: Annotated[bool, typer.Option(
        help="Rebuild the dashboard's tables even if built for these findings.")] = False,
) -> None:
    """Serve the analysts' dashboard over a store and the findings of its scan."""
    from distillguard.cli import _secret_token, fail
    from distillguard.dashboard import DashboardOptions, OpenDashboard, run_dashboard

    secret = token or _secret_token(token_file, None, env=TOKEN_ENV, option="token",
                                    what="dashboard token")
    if token is not None:
        err.print(f"[yellow]warning:[/] --token is visible to every user of this machine; "
                  f"prefer {TOKEN_ENV} or --token-file", highlight=False)
    url = f"http://{host if ':' not in host else f'[{host}]'}:{port}/"

    def ready(opened: OpenDashboard) -> None:
        if opened.built_seconds is not None:
            err.print(f"dashboard tables built in {opened.built_seconds:.1f} s", highlight=False)
        out.print(f"[bold]Dashboard[/] of {findings} over {db}: {url}"
                  + ("?token=<your token>" if secret else "") + "  (Ctrl-C to stop)",
                  highlight=False)

    try:
        run_dashboard(DashboardOptions(db=db, findings=findings, host=host, port=port,
                                       token=secret, policy=policy, analyst=analyst,
                                       rebuild=rebuild), on_step=_step, on_ready=ready)
    except DistillguardError as exc:
        fail(str(exc))


def report_command(
    findings: FindingsPath,
    db: Annotated[Path | None, typer.Option(
        help="The store the scan used (needed for --html: graphs, traffic, samples).")] = None,
    html: Annotated[Path | None, typer.Option(
        help="Write the campaign pages as one self-contained HTML file.")] = None,
    markdown: Annotated[Path | None, typer.Option(help="Write the Markdown report.")] = None,
    policy: PolicyPath = None,
) -> None:
    """Write the analysts' report of a scan: self-contained HTML and/or Markdown."""
    from distillguard.cli import fail
    from distillguard.dashboard import open_dashboard, read_findings, render_report
    from distillguard.verdict import findings_markdown

    if html is None and markdown is None:
        fail("give --html FILE and/or --markdown FILE")
    try:
        if markdown is not None:
            markdown.write_text(findings_markdown(read_findings(findings)[0]), encoding="utf-8")
            out.print(f"Markdown report: {markdown}", highlight=False)
        if html is not None:
            if db is None:
                fail("--html needs --db, the store the scan used")
            opened = open_dashboard(db, findings, policy=policy, on_step=_step)
            try:
                html.write_text(render_report(opened.queries), encoding="utf-8")
            finally:
                opened.close()
            out.print(f"HTML report: {html} ({html.stat().st_size / 1e6:.1f} MB, "
                      "self-contained)", highlight=False)
    except DistillguardError as exc:
        fail(str(exc))


def decisions_command(
    db: Db,
    labels: Annotated[Path | None, typer.Option(
        help="Write the decisions in force as labels (JSON Lines, the format `eval --labels` "
             "reads) for threshold tuning.")] = None,
) -> None:
    """List the analysts' decisions recorded in a store; export them as labels."""
    from distillguard.cli import fail
    from distillguard.dashboard import decision_labels, load_decisions

    try:
        decisions = load_decisions(db)
    except DistillguardError as exc:
        fail(str(exc))
    table = Table(title=f"Decisions in {db}", title_justify="left")
    for column in ("when (UTC)", "subject", "decision", "analyst", "note"):
        table.add_column(column)
    for d in decisions:
        table.add_row(d.decided_at, f"{d.kind} {d.subject}", d.decision, d.analyst, d.note)
    out.print(table)
    if labels is not None:
        rows = decision_labels(decisions)
        labels.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
        out.print(f"{len(rows):,} label(s) -> {labels}", highlight=False)
