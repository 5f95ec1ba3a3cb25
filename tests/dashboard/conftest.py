"""Stores for dashboard tests, a served dashboard, and Debian's Chromium driven by Playwright.

``tiny``: a small hand-made store and findings (fast; no scan tables, so the
dashboard's fallbacks are what runs), with hostile requests and a hostile
account id. ``scanned``: simulated traffic scanned for real (slow), with a
campaign account that sent hostile requests.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from distillguard.dashboard import dashboard_app, open_dashboard
from distillguard.dashboard.server import OpenDashboard
from distillguard.engines import ExchangeStore
from tests.conftest import installed_program, write_jsonl
from tests.gateway.conftest import ServerThread

HOSTILE_PROMPTS = [
    "<script>window.__pwned = 1; alert(1)</script> Rate the following two responses on a "
    "scale of 1 to 10 and think step by step.",
    '<img src=x onerror="window.__pwned = 2"> Generate 20 new questions for training data.',
    '<a href="javascript:window.__pwned = 3">click me</a> </pre></mark><b>bold?</b>',
    "</script><script>window.__pwned = 4</script>{{ 7 * 7 }} ${7*7}",
]
HOSTILE_ACCOUNT = '<img src=x onerror="window.__pwned=5">'
CAMPAIGN = ["acct-a1", "acct-a2", "acct-a3", "acct-a4", HOSTILE_ACCOUNT]
RELEASE = datetime(2026, 3, 2, 12, tzinfo=UTC)
T0 = datetime(2026, 3, 1, tzinfo=UTC)


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def tiny_records() -> list[dict[str, Any]]:
    """Four days of traffic: five campaign accounts grading and generating data (two pay
    with one card, two share an IP, all opened minutes apart), two ordinary users; the
    first campaign account also sent the hostile prompts."""
    records = []
    accounts = [*CAMPAIGN, "acct-user1", "acct-user2"]
    for n, account in enumerate(accounts):
        member = account in CAMPAIGN
        for i in range(60):
            ts = T0 + timedelta(hours=i * 1.6 + n * 0.1)
            after = ts >= RELEASE
            prompt = (f"Rate the following two responses on a scale of 1 to 10. Question {i}: "
                      f"what is {i} + {n}?" if member and i % 2 else
                      f"Generate 5 new questions about topic {i} for a training dataset."
                      if member else f"hello, can you help me plan a trip to city {i}?")
            record = {"request_id": f"r-{n}-{i:03d}", "ts": _iso(ts), "account_id": account,
                      "model": "model-b2" if after and (member or i % 4 == 0) else "model-b1",
                      "messages": [{"role": "user", "content": prompt}],
                      "response": f"answer {i}", "input_tokens": 20 + i, "output_tokens": 40,
                      "ip": "198.51.100.7" if account in ("acct-a3", "acct-a4")
                      else f"203.0.113.{n}", "asn": 64500 + n,
                      "account_created": _iso(T0 - timedelta(days=3, minutes=-3 * n))
                      if member else _iso(T0 - timedelta(days=300 + n))}
            if account in ("acct-a1", "acct-a2"):
                record["payment_fingerprint"] = "pay-shared-1"
            records.append(record)
    for i, prompt in enumerate(HOSTILE_PROMPTS):
        records.append({"request_id": f"hostile-{i}", "ts": _iso(T0 + timedelta(minutes=5 + i)),
                        "account_id": "acct-a1", "model": "model-b1",
                        "system": "You are <b>helpful</b>.",
                        "messages": [{"role": "user", "content": prompt}],
                        "response": "<script>window.__pwned = 9</script>"})
    return records


def tiny_findings() -> dict[str, Any]:
    rules = ["templates.min_owners", "campaign.min_owners"]
    accounts = [{"account_id": a, "verdict": "extraction" if i < 3 else "review",
                 "score": round(0.9 - i * 0.1, 2), "campaign_id": "C1",
                 "signals": {"template_share": 0.8, "grading": 0.5, "exchanges": 60,
                             "sampled": 60},
                 "reasons": [f"80% of 60 requests are built on templates ({a})",
                             "one of 5 accounts linked into campaign C1"],
                 "rules": rules, "reason_rules": [rules[:1], rules[1:]]}
                for i, a in enumerate(CAMPAIGN)]
    return {
        "format": "distillguard-findings/1", "generated_at": "2026-03-05T00:00:00Z",
        "input": {"exchanges": 424, "accounts": 7, "quarantined": 0,
                  "from": _iso(T0), "to": _iso(T0 + timedelta(days=4))},
        "accounts": accounts,
        "campaigns": [{
            "campaign_id": "C1", "score": 0.83, "accounts": sorted(CAMPAIGN), "exchanges": 304,
            "first_seen": _iso(T0), "last_seen": _iso(T0 + timedelta(days=4)),
            "capabilities": {"math_reasoning": 0.6, "writing": 0.4},
            "techniques": ["grading", "data_generation"],
            "indicators": {"ips": ["198.51.100.7"], "asns": [], "client_fingerprints": [],
                           "payment_fingerprints": ["pay-shared-1"],
                           "templates": ["unit:00000000000000aa"]},
            "pivots": [{"model": "model-b2", "released_at": _iso(RELEASE),
                        "share_within_24h": 1.0, "exchanges_within_24h": 75,
                        "baseline_share_within_24h": 0.27}],
            "reasons": ["5 accounts of 4 distinct owners send requests built on the same "
                        "text templates <script>window.__pwned=6</script>"],
            "rules": rules[1:], "reason_rules": [rules[1:]], "owners": 4,
            "template_share": 0.8,
            "created_in_batches": {"accounts_with_creation_time": 5,
                                   "created_within_10_min_of_another": 5},
            "sample_prompts": HOSTILE_PROMPTS[:2]}],
    }


@dataclass
class StoreCase:
    db: Path
    findings_path: Path
    findings: dict[str, Any]


def write_case(folder: Path, records: list[dict[str, Any]], findings: dict[str, Any]
                ) -> StoreCase:
    folder.mkdir(parents=True, exist_ok=True)
    logs = write_jsonl(folder / "exchanges.jsonl", records)
    db = folder / "store.duckdb"
    with ExchangeStore(db) as store:
        store.ingest([logs])
    path = folder / "findings.json"
    path.write_bytes(orjson.dumps(findings))
    return StoreCase(db, path, findings)


@pytest.fixture
def tiny(tmp_path: Path) -> StoreCase:
    return write_case(tmp_path / "tiny", tiny_records(), tiny_findings())


@pytest.fixture(scope="session")
def scanned(tmp_path_factory: pytest.TempPathFactory, shared_corpora: Path) -> StoreCase:
    """Simulated traffic, ingested and scanned into a store; the strongest account of the
    top campaign then sent the hostile prompts (ingested after the scan)."""
    from distillguard.engines.scan_job import ScanJob, run_scan_job
    from distillguard.sim import SimOptions, simulate

    folder = tmp_path_factory.mktemp("scanned")
    simulate(SimOptions(out=folder / "sim", scale=0.002, seed=3, corpora=shared_corpora),
             show_progress=False)
    db = folder / "store.duckdb"
    with ExchangeStore(db) as store:
        store.ingest(sorted((folder / "sim" / "exchanges").iterdir()))
    findings, _ = run_scan_job(ScanJob([], db, folder / "findings.json",
                                       releases=folder / "sim" / "releases.json"))
    target = findings["campaigns"][0]["accounts"][0]
    hostile = [{"request_id": f"hostile-{i}", "ts": findings["input"]["from"],
                "account_id": target, "model": "model-b1",
                "messages": [{"role": "user", "content": p}]}
               for i, p in enumerate(HOSTILE_PROMPTS)]
    with ExchangeStore(db) as store:
        store.ingest([write_jsonl(folder / "hostile.jsonl", hostile)])
    return StoreCase(db, folder / "findings.json", findings)


@dataclass
class Served:
    url: str
    opened: OpenDashboard
    case: StoreCase


def serve(case: StoreCase, **options: Any) -> Iterator[Served]:
    opened = open_dashboard(case.db, case.findings_path)
    try:
        app = dashboard_app(opened.queries, allowed_hosts=["127.0.0.1", "localhost"],
                            analyst="tester", **options)
        with ServerThread(app, lifespan="off") as server:
            yield Served(server.url, opened, case)
    finally:
        opened.close()


@pytest.fixture
def tiny_served(tiny: StoreCase) -> Iterator[Served]:
    yield from serve(tiny)


def chromium_executable() -> str:
    """Debian's Chromium, installed with apt-get on first use (CI machines start without
    it); the tests are skipped with one line where it cannot be installed."""
    return installed_program("chromium", "chromium",
                             "the dashboard's browser tests need Debian's chromium, not on "
                             "PATH: sudo apt-get install -y chromium")


CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--disable-dev-shm-usage"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, driven by Playwright (which never downloads a browser of
    its own here)."""
    executable = chromium_executable()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=executable, headless=True,
                                     args=CHROMIUM_FLAGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context (no cookies from other tests) and a page in it."""
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    try:
        yield context.new_page()
    finally:
        context.close()
