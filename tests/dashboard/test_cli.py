"""The analysts' commands: `dashboard` (served by its own process), `report --html`,
`decisions`, and a dismissal in the dashboard read by the next `scan` of the store."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
import pytest
from typer.testing import CliRunner

from distillguard.cli import app
from distillguard.dashboard import load_decisions, open_dashboard, record_decision
from tests.dashboard.conftest import StoreCase
from tests.gateway.conftest import free_port

runner = CliRunner()
DISTILLGUARD = Path(sys.executable).parent / "distillguard"


def test_report_html_is_one_file_and_markdown(tiny: StoreCase, tmp_path: Path) -> None:
    html, md = tmp_path / "case.html", tmp_path / "case.md"
    result = runner.invoke(app, ["report", "--findings", str(tiny.findings_path), "--db",
                                 str(tiny.db), "--html", str(html), "--markdown", str(md)])
    assert result.exit_code == 0, result.output
    assert "self-contained" in result.output
    page = html.read_text(encoding="utf-8")
    assert 'id="campaign-C1"' in page and "&lt;script&gt;window.__pwned=6" in page
    assert not re.search(r'(src|href)="(https?:)?//|src="/static', page)
    assert "C1" in md.read_text(encoding="utf-8")


@pytest.mark.parametrize(("args", "said"), [
    ([], "give --html FILE and/or --markdown FILE"),
    (["--html", "x.html"], "--html needs --db"),
    (["--html", "x.html", "--db", "nowhere.duckdb"], "no store at nowhere.duckdb"),
])
def test_report_refuses_with_a_reason(tiny: StoreCase, args: list[str], said: str) -> None:
    result = runner.invoke(app, ["report", "--findings", str(tiny.findings_path), *args])
    assert result.exit_code != 0 and said in result.output.replace("\n", " ")


def test_report_of_a_file_that_is_not_findings(tiny: StoreCase, tmp_path: Path) -> None:
    other = tmp_path / "other.json"
    other.write_bytes(b'{"format": "something-else"}')
    result = runner.invoke(app, ["report", "--findings", str(other), "--markdown",
                                 str(tmp_path / "r.md")])
    assert result.exit_code != 0 and "is not a findings file" in result.output


def test_decisions_lists_and_exports_labels(tiny: StoreCase, tmp_path: Path) -> None:
    opened = open_dashboard(tiny.db, tiny.findings_path)
    try:
        record_decision(opened.store.con, tiny.findings, kind="campaign", subject="C1",
                        decision="confirmed", note="case 7", analyst="ana")
        record_decision(opened.store.con, tiny.findings, kind="account", subject="acct-a2",
                        decision="dismissed", note="a reseller", analyst="bo")
    finally:
        opened.close()
    labels = tmp_path / "labels.jsonl"
    result = runner.invoke(app, ["decisions", "--db", str(tiny.db), "--labels", str(labels)])
    assert result.exit_code == 0, result.output
    assert "campaign C1" in result.output and "a reseller" in result.output
    rows = {r["account_id"]: r for r in map(orjson.loads, labels.read_bytes().splitlines())}
    assert len(rows) == 5 and "5 label(s)" in result.output
    assert rows["acct-a2"]["decision"] == "dismissed" and rows["acct-a1"]["actor"] == (
        "confirmed campaign C1")


def _serve(args: list[str], env: dict[str, str] | None = None
           ) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    proc = subprocess.Popen([str(DISTILLGUARD), "dashboard", *args, "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, **(env or {})})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the dashboard stopped: {proc.stdout.read() if proc.stdout else ''}")
        try:
            httpx.get(url + "/static/app.css", timeout=2)
            return proc, url
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    pytest.fail("the dashboard did not answer within 120 s")


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGINT)
    try:
        output, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        output, _ = proc.communicate()
    return output


def test_dashboard_command_serves_builds_once_and_stops(tiny: StoreCase) -> None:
    args = ["--db", str(tiny.db), "--findings", str(tiny.findings_path)]
    proc, url = _serve(args)
    try:
        page = httpx.get(url + "/")
        assert page.status_code == 200 and 'data-campaign="C1"' in page.text
        assert httpx.get(url + "/", headers={"host": "dashboard.example"}).status_code == 400
    finally:
        output = _stop(proc)
    assert "dashboard tables built in" in output and f"{url}/" in output
    proc, url = _serve(args)
    output = _stop(proc)
    assert "dashboard tables built" not in output, "built again for the same findings"


def test_dashboard_command_token_from_the_environment(tiny: StoreCase) -> None:
    proc, url = _serve(["--db", str(tiny.db), "--findings", str(tiny.findings_path)],
                       env={"DISTILLGUARD_DASHBOARD_TOKEN": "env-token-1"})
    try:
        assert httpx.get(url + "/api/overview").status_code == 401
        ok = httpx.get(url + "/api/overview", headers={"authorization": "Bearer env-token-1"})
        assert ok.status_code == 200
    finally:
        output = _stop(proc)
    assert "?token=<your token>" in output and "env-token-1" not in output


@pytest.mark.parametrize(("args", "said"), [
    (["--db", "{db}", "--findings", "{findings}", "--host", "0.0.0.0"], "needs a token"),
    (["--db", "nowhere.duckdb", "--findings", "{findings}"], "no store at nowhere.duckdb"),
    (["--db", "{db}", "--findings", "nowhere.json"], "cannot read findings nowhere.json"),
])
def test_dashboard_command_refuses_with_a_reason(tiny: StoreCase, args: list[str],
                                                 said: str) -> None:
    filled = [a.format(db=tiny.db, findings=tiny.findings_path) for a in args]
    result = runner.invoke(app, ["dashboard", *filled], env={"DISTILLGUARD_DASHBOARD_TOKEN": ""})
    assert result.exit_code != 0 and said in result.output.replace("\n", " ")


@pytest.mark.slow
def test_dismissed_in_the_dashboard_not_listed_by_the_next_scan(scanned: StoreCase,
                                                                tmp_path: Path) -> None:
    """A copy of the scanned store: an analyst dismisses an account of the top campaign; the
    next `scan --db` of the same store does not list it, and says why."""
    db = tmp_path / "store.duckdb"
    shutil.copy(scanned.db, db)
    shutil.copytree(scanned.db.with_name(scanned.db.name + ".parts"),
                    db.with_name(db.name + ".parts"))
    campaign = max(scanned.findings["campaigns"], key=lambda c: c["score"])
    hostile_sender = scanned.findings["campaigns"][0]["accounts"][0]
    target = sorted(a for a in campaign["accounts"] if a != hostile_sender)[0]
    earlier = load_decisions(db)  # the browser tests may have decided on this store too
    opened = open_dashboard(db, scanned.findings_path)
    try:
        record_decision(opened.store.con, scanned.findings, kind="account", subject=target,
                        decision="dismissed", note="known reseller", analyst="ana")
    finally:
        opened.close()
    assert [d.subject for d in load_decisions(db)] == [*(d.subject for d in earlier), target]
    out = tmp_path / "again.json"
    result = runner.invoke(app, ["scan", "--db", str(db), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert f"Analysts' decisions applied: {len(earlier) + 1}" in result.output
    again = orjson.loads(out.read_bytes())
    assert target not in {a["account_id"] for a in again["accounts"]}
    dismissed = {a["account_id"]: a for a in again["dismissed_accounts"]}
    assert re.fullmatch(r"the account was dismissed by ana on \d{4}-\d\d-\d\d \(known reseller\); "
                        r"same evidence as then", dismissed[target]["why"])
    assert dismissed[target]["campaign_id"] is not None
