"""Dashboard page times on a store of 4M+ exchanges, through the real server.

    .venv/bin/python benchmarks/dashboard.py [--scale 0.166] [--repeat 5] [--corpora DIR]

Input is the scan benchmark's simulated traffic (cached in benchmarks/out/, shared
with benchmarks/scan.py), ingested into a store and scanned once (cached too).
Then `distillguard dashboard` starts in its own process (building its tables for
those findings, timed) and every kind of page is fetched over HTTP ``--repeat``
times: the overview, the largest campaign and its graph, the account with the
most exchanges (first, middle and last page, a search), the decisions page.

Two baselines from the same run: the server's floor (a static file over the same
server) and one pass over the store's exchanges (count and time span per
account, the least a page computed from the store itself would cost).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import measure, mib
from scan import OUT, generate

from distillguard.corpora import find_corpora_dir

BIN = Path(sys.executable).parent
SETUP_MEMORY_LIMIT = "3GB"


def scanned_store(scale: float, corpora: Path) -> tuple[Path, Path]:
    """The store and findings of one scan of the simulated traffic (made once)."""
    sim = generate(scale, corpora)
    folder = OUT / f"dashboard-{scale:g}"
    db, findings = folder / "store.duckdb", folder / "findings.json"
    if not findings.exists():
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.iterdir():
            subprocess.run(["rm", "-rf", str(stale)], check=True)
        done = measure(f"""
            from pathlib import Path
            from distillguard.engines import EngineResources
            from distillguard.engines.scan_job import ScanJob, run_scan_job
            # Making the store is setup, not what is measured: given memory to spare.
            sim = Path({str(sim)!r})
            findings, res = run_scan_job(ScanJob([sim / "exchanges"], Path({str(db)!r}),
                                                 Path({str(findings)!r}),
                                                 releases=sim / "releases.json",
                                                 resources=EngineResources({SETUP_MEMORY_LIMIT!r})))
            result = findings["input"]["exchanges"]
        """)
        print(f"  ingested and scanned {done['result']:,} exchanges into {db} in "
              f"{done['seconds']:.0f}s (peak RSS {mib(done['peak_rss_bytes'])})", flush=True)
    return db, findings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


TIMEOUT = 120.0


def get(url: str) -> tuple[float, int, bytes]:
    """Seconds, status and body of a GET (``TIMEOUT`` seconds and status 0 when it timed out)."""
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            body = response.read()
    except TimeoutError:
        return TIMEOUT, 0, b""
    return time.perf_counter() - started, response.status, body


def store_pass(db: Path) -> float:
    """Seconds for one pass over the store's exchanges: per account, count and time span."""
    done = measure(f"""
        from pathlib import Path
        from distillguard.engines import ExchangeStore
        with ExchangeStore(Path({str(db)!r})) as store:
            result = len(store.con.execute(
                "SELECT account_id, count(*), min(ts), max(ts) FROM exchanges GROUP BY 1"
            ).fetchall())
    """)
    return done["seconds"]


def screenshots(base: str, campaign_id: str, folder: Path) -> None:
    """The first screens of the overview and of a campaign page, in Debian's Chromium."""
    import shutil

    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("--screenshots needs Debian's chromium (apt-get install chromium)")
    folder.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True,
                                    args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1360, "height": 900})
        for name, path in (("overview", "/"), ("campaign", f"/campaigns/{campaign_id}")):
            page.goto(base + path, wait_until="load")
            # A graph of thousands of accounts is drawn at once and keeps settling for a
            # while on a loaded machine: the picture is taken once it is drawn, 20 s on.
            page.wait_for_function("() => Array.from(document.querySelectorAll('.graphbox'))"
                                   ".every(b => b.hasAttribute('data-rendered-nodes'))",
                                   timeout=120_000)
            page.wait_for_timeout(20_000 if path != "/" else 0)
            target = folder / f"dashboard-{name}.png"
            page.screenshot(path=str(target), full_page=True,
                            clip={"x": 0, "y": 0, "width": 1360, "height": 1500})
            print(f"  screenshot {target}")
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.166)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--corpora", default=None)
    parser.add_argument("--reuse-tables", action="store_true",
                        help="Keep the dashboard tables already built for these findings "
                             "(default: build them again, timed).")
    parser.add_argument("--screenshots", type=Path, default=None,
                        help="Also save the overview and the largest campaign as seen in "
                             "Chromium (dashboard-overview.png, dashboard-campaign.png).")
    args = parser.parse_args()
    db, findings_path = scanned_store(args.scale, find_corpora_dir(args.corpora))
    import orjson

    findings = orjson.loads(findings_path.read_bytes())
    n = findings["input"]["exchanges"]
    print(f"dashboard benchmark: {n:,} exchanges, {len(findings['accounts']):,} accounts "
          f"listed, {len(findings['campaigns'])} campaigns", flush=True)
    store_seconds = store_pass(db)

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    server = subprocess.Popen([str(BIN / "distillguard"), "dashboard", "--db", str(db),
                               "--findings", str(findings_path), "--port", str(port),
                               *([] if args.reuse_tables else ["--rebuild"])],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            if server.poll() is not None:
                raise SystemExit("the dashboard stopped (run it alone to see why)")
            try:
                get(f"{base}/static/app.css")
                break
            except (OSError, TimeoutError):
                time.sleep(0.2)
        ready = time.perf_counter() - started
        campaign = max(findings["campaigns"], key=lambda c: len(c["accounts"]))
        account = max(campaign["accounts"], key=lambda a: next(
            (x["signals"].get("exchanges", 0) for x in findings["accounts"]
             if x["account_id"] == a), 0))
        quoted = urllib.parse.quote(account, safe="")
        _, _, body = get(f"{base}/api/accounts/{quoted}/exchanges")
        pages = orjson.loads(body)["pages"]
        urls = {
            "static file (server floor)": "/static/app.css",
            "overview": "/",
            f"campaign {campaign['campaign_id']} ({len(campaign['accounts'])} accounts)":
                f"/campaigns/{campaign['campaign_id']}",
            "campaign graph (JSON)": f"/api/campaigns/{campaign['campaign_id']}/graph",
            f"account, page 1 of {pages}": f"/accounts/{quoted}",
            f"account, page {pages // 2 + 1}": f"/accounts/{quoted}?page={pages // 2 + 1}",
            f"account, page {pages}": f"/accounts/{quoted}?page={pages}",
            "exchanges page (JSON)": f"/api/accounts/{quoted}/exchanges?page=2",
            "decisions": "/decisions",
            "account, search 'rate'": f"/accounts/{quoted}?q=rate",
        }
        if args.screenshots is not None:
            screenshots(base, campaign["campaign_id"], args.screenshots)
        print(f"  server up in {ready:.1f}s ("
              + ("tables already built" if args.reuse_tables else
                 "dashboard tables built from the store") + "); "
              f"account {account!r} has {pages} pages of exchanges")
        print(f"  {'page':<44} {'median ms':>10} {'max ms':>8} {'KB':>7}")
        worst = 0.0
        for name, path in urls.items():
            times = []
            for _ in range(args.repeat):
                seconds, status, body = get(base + path)
                if status not in (0, 200):
                    raise SystemExit(f"{path} answered {status}")
                times.append(seconds)
                if status == 0:
                    print(f"  {name}: no answer within {TIMEOUT:.0f} s", flush=True)
                    break
            if not name.startswith("static"):
                worst = max(worst, max(times))
            print(f"  {name:<44} {statistics.median(times) * 1000:>10.1f} "
                  f"{max(times) * 1000:>8.1f} {len(body) / 1000:>7.1f}", flush=True)
        print(f"slowest page view {worst * 1000:.0f} ms (target < 1000 ms); one pass over the "
              f"store's exchanges {store_seconds * 1000:.0f} ms (ratio slowest page / store "
              f"pass {worst / store_seconds:.3f})")
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(server.pid, signal.SIGKILL)


if __name__ == "__main__":
    main()
