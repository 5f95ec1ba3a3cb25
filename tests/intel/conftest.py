from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from distillguard.intel import IntelConfig

SECRET = b"test-sharing-key-0123456789abcdef"


@pytest.fixture
def config() -> IntelConfig:
    return IntelConfig(producer="Lab A", contact="security@lab-a.example", secret=SECRET)


def tiny_findings() -> dict[str, Any]:
    """A findings file (format v1) with one campaign and every indicator kind."""
    return {
        "format": "distillguard-findings/1", "generated_at": "2026-03-09T08:00:00Z",
        "input": {"exchanges": 1000, "accounts": 10, "quarantined": 0,
                  "from": "2026-03-01T00:00:00Z", "to": "2026-03-08T00:00:00Z"},
        "accounts": [{"account_id": f"acct_secret_{i}", "verdict": "extraction", "score": 0.9,
                      "campaign_id": "C1", "signals": {}, "reasons": ["r"]} for i in range(4)],
        "campaigns": [{
            "campaign_id": "C1", "score": 0.87,
            "accounts": [f"acct_secret_{i}" for i in range(4)], "exchanges": 4321,
            "first_seen": "2026-03-01T02:00:00Z", "last_seen": "2026-03-07T23:00:00Z",
            "capabilities": {"agentic_coding": 0.6, "tool_use": 0.4},
            "techniques": ["cot_elicitation", "tool_use"],
            "indicators": {"ips": ["198.51.100.7", "198.51.100.9", "2001:db8::5"],
                           "asns": [64500],
                           "payment_fingerprints": ["pmfp_rawcard_1", "pmfp_rawcard_2"],
                           "client_fingerprints": ["t13d1516h2_8daaf6152771_b0da82dd1658"],
                           "templates": ["unit:0123456789abcdef", "unit:fedcba9876543210"]},
            "pivots": [], "reasons": ["4 accounts of 4 distinct owners send requests built on "
                                      "the same text templates (80% of sampled requests)"]}],
    }


@pytest.fixture
def findings_file(tmp_path: Path) -> Path:
    path = tmp_path / "findings.json"
    path.write_bytes(orjson.dumps(tiny_findings()))
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


COLLECTION = "3f0e0b41-9e5b-4b5e-9a37-2a9f3c1d7e11"
PAGE_SIZE = 20


class Medallion:
    def __init__(self, url: str, collection: str) -> None:
        self.api_root = url
        self.collection = collection


@pytest.fixture
def medallion(tmp_path: Path) -> Iterator[Medallion]:
    """OASIS medallion (TAXII 2.1, memory backend) on loopback, a page size of 20 objects."""
    binary = shutil.which("medallion", path=str(Path(sys.executable).parent))
    if binary is None:
        pytest.fail("medallion is missing: it is a dev dependency (pip install -e '.[dev]')")
    port = _free_port()
    root = f"http://127.0.0.1:{port}/share/"
    data = {
        "/discovery": {"title": "test", "description": "intel tests", "contact": "none",
                       "default": root, "api_roots": [root]},
        "share": {"information": {"title": "share", "description": "test root",
                                  "versions": ["application/taxii+json;version=2.1"],
                                  "max_content_length": 2_000_000},
                  "status": [],
                  "collections": [{"id": COLLECTION, "title": "campaigns", "description": "t",
                                   "can_read": True, "can_write": True,
                                   "media_types": ["application/stix+json;version=2.1"],
                                   "objects": [], "manifest": []}]},
    }
    (tmp_path / "data.json").write_bytes(orjson.dumps(data))
    (tmp_path / "config.json").write_bytes(orjson.dumps({
        "backend": {"module": "medallion.backends.memory_backend",
                    "module_class": "MemoryBackend", "filename": str(tmp_path / "data.json")},
        "users": {"lab-b": "s3cret"}, "taxii": {"max_page_size": PAGE_SIZE}}))
    log = open(tmp_path / "medallion.log", "wb")  # noqa: SIM115 - closed after the server
    proc = subprocess.Popen([binary, "--host", "127.0.0.1", "--port", str(port),
                             str(tmp_path / "config.json")], stdout=log, stderr=log,
                            env={**os.environ, "PYTHONWARNINGS": "ignore"})
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("medallion did not start: "
                                + (tmp_path / "medallion.log").read_text()[-2000:])
                time.sleep(0.1)
        yield Medallion(root, COLLECTION)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


SHARED = Path(__file__).resolve().parents[3] / "shared" / "corpora"


def simulate_provider(out: Path, seed: int, **options: Any) -> Path:
    from distillguard.sim import SimOptions, simulate

    simulate(SimOptions(out=out, corpora=SHARED, seed=seed, **options), show_progress=False)
    return out


@pytest.fixture(scope="session")
def providers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Two simulated providers whose agentic campaign is one operator (same operator seed),
    and provider A's findings."""
    from distillguard.engines.scan_job import ScanJob, run_scan_job

    base = tmp_path_factory.mktemp("providers")
    common = {"scale": 0.005, "scenario": "evasive", "shared_operator": "agentic",
              "operator_seed": 7}
    a = simulate_provider(base / "a", 21, **common)
    b = simulate_provider(base / "b", 22, **common)
    findings, _ = run_scan_job(ScanJob([a / "exchanges"], None, base / "a-findings.json"))
    return {"a": a, "b": b, "findings": findings}


@pytest.fixture(scope="session")
def scanned_provider(providers: dict[str, Any]) -> dict[str, Any]:
    import duckdb

    con = duckdb.connect()
    parts = f"read_parquet('{providers['a']}/exchanges/*.parquet')"
    payments = con.execute(f"SELECT DISTINCT payment_fingerprint FROM {parts} "
                           "WHERE payment_fingerprint IS NOT NULL").fetchall()
    accounts = con.execute(f"SELECT DISTINCT account_id FROM {parts}").fetchall()
    con.close()
    return {"findings": providers["findings"],
            "config": IntelConfig(producer="Lab A", secret=SECRET),
            "raw_identifiers": {r[0] for r in payments} | {r[0] for r in accounts}}
