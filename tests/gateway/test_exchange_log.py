"""The gateway's log: rotation, and what survives ``kill -9``."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from distillguard.gateway.exchange_log import ExchangeLogWriter
from tests.conftest import make_record
from tests.gateway.conftest import free_port, read_log


def test_writer_rotates_by_size_and_every_file_reads_back(tmp_path: Path) -> None:
    writer = ExchangeLogWriter(tmp_path, flush_seconds=0.0, rotate_bytes=600)
    for i in range(12):
        writer.write(make_record(i))
    asyncio.run(writer.close())
    files = sorted(tmp_path.glob("gateway-*.jsonl"))
    assert len(files) >= 3
    rows, quarantined = read_log(tmp_path)
    assert quarantined == [] and sorted(r["request_id"] for r in rows) == sorted(
        f"r{i}" for i in range(12))


def test_writer_holds_lines_until_the_flush_interval(tmp_path: Path) -> None:
    writer = ExchangeLogWriter(tmp_path, flush_seconds=60.0)
    writer.write(make_record(1))
    assert writer.path is None  # nothing on disk yet
    writer.flush()
    assert writer.path is not None and writer.path.read_bytes().count(b"\n") == 1
    asyncio.run(writer.close())


def _wait_up(url: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("gateway did not start")


@pytest.mark.slow
def test_kill_9_loses_at_most_the_last_second(replay, tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "distillguard.cli", "gateway", "--upstream", replay.url,
         "--port", str(port), "--admin-port", "0", "--log-dir", str(tmp_path / "log")],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_up(url, proc)
        with httpx.Client(base_url=url) as client:
            def send(i: int) -> None:
                r = client.post("/v1/chat/completions", headers={"authorization": "Bearer k"},
                                json={"model": "model-b1",
                                      "messages": [{"role": "user", "content": f"question {i}"}]})
                assert r.status_code == 200
            for i in range(20):
                send(i)
            time.sleep(1.2)  # past the flush interval: these 20 must be on disk
            for i in range(20, 25):
                send(i)
        workers = psutil.Process(proc.pid).children(recursive=True)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
        if proc.stderr:
            proc.stderr.close()
    rows, quarantined = read_log(tmp_path / "log")
    assert quarantined == []  # no torn line
    logged = {r["messages"][0]["content"] for r in rows}
    assert {f"question {i}" for i in range(20)} <= logged
    # the scoring worker does not outlive the gateway
    _, alive = psutil.wait_procs(workers, timeout=10)
    assert alive == []


def test_records_hold_the_specs_fields_in_its_order_then_the_gateways_own() -> None:
    from distillguard.gateway.config import AccountInfo
    from distillguard.gateway.exchange_log import EXTRA_FIELDS, Exchange, exchange_record
    from distillguard.gateway.identity import Caller
    from distillguard.gateway.openai_format import openai_request
    from distillguard.gateway.policy import Decision
    from distillguard.logs.schema import SPEC_FIELDS

    request = openai_request({"model": "m", "messages": [
        {"role": "system", "content": "s"},
        {"role": "user", "content": [{"type": "text", "text": "hi"},
                                     {"type": "image_url", "image_url": {"url": "data:,"}}]}]})
    caller = Caller(AccountInfo("a", "o", "pro", True, "pf"), "key-1", "203.0.113.1", "ua",
                    ("authorization", "Bearer secret"))
    exchange = Exchange(request, caller, 1_700_000_000_000, 0.0)
    exchange.decision = Decision("block", "r", True, "review")
    exchange.status = 200
    exchange.fields = {"response": "ok", "reasoning": None, "input_tokens": "12",
                       "output_tokens": 3}
    record = exchange.record("rid", 0.01)
    spec = [f.name for f in SPEC_FIELDS]
    names = list(record)
    written_spec = [n for n in names if n in spec]
    assert written_spec == [n for n in spec if n in record]  # the spec's order
    assert names == written_spec + [n for n in names if n not in spec]  # then the extras
    assert set(names) - set(spec) <= set(EXTRA_FIELDS)
    assert record["has_image"] is True and record["verified"] is True
    assert "input_tokens" not in record and record["output_tokens"] == 3  # not an integer
    assert record["opaque_parts"] == [{"message": 1, "type": "image_url", "bytes": 49}]
    assert record["gateway_action"] == "block" and record["gateway_shadow"] is True
    assert "secret" not in str(record)
    with pytest.raises(ValueError, match="account_id"):
        exchange_record({"request_id": "r", "ts": 1, "model": "m", "messages": []}, {})
