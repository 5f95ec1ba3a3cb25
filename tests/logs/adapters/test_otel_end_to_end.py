"""Real GenAI spans, scanned: the same traffic through the gateway's native log and through
the spans the official OpenTelemetry instrumentation of the openai client emits, exported
by the SDK's OTLP exporters to ``collect`` (protobuf and JSON) and to an OTLP JSON file,
with the content on the spans (``gen_ai.input.messages`` ...); and the same traffic sent
once more straight to the replay upstream with the content in log records of the spans
(``gen_ai.client.inference.operation.details``, exported beside them to a file).

The traffic (``files/traffic.jsonl.gz``) is a slice of a simulation: campaign accounts
(templated extraction prompts) and ordinary ones, 547 requests, sent by the openai client
through the gateway to the replay upstream, every seventh one streamed. The findings of
the scans must agree on what a source of spans can carry; what they may differ in:

- times (``from``/``to``, campaigns' ``first_seen``/``last_seen``): the client starts its
  span a moment before the gateway receives the request;
- ``indicators``: the gateway sees the client's IP and User-Agent, a client span has
  neither;
- the figures of the behavior reason: the IP is one of the views behavior compares
  accounts in (here every account shares the loopback address), and spans carry none;
  the verdicts, scores and signals that rest on behavior must still agree;
- ``sample_prompts``: picked by a hash of the request id, which is the gateway's own in
  its log and the trace and span ids in the spans;
- the coverage of optional fields (``fields_missing`` ...), which is the point: the spans'
  scan reports what they lack.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from distillguard.engines.scan_job import ScanJob, run_scan_job
from distillguard.gateway import Gateway, gateway_app, load_config
from distillguard.logs import read_file
from distillguard.logs.adapters.receiver import CollectOptions, receiver_app
from distillguard.replay import ReplayCorpus, replay_app
from tests.gateway.conftest import ServerThread

pytestmark = pytest.mark.slow

FILES = Path(__file__).parent / "files"
TRAFFIC = FILES / "traffic.jsonl.gz"
EMITTER = Path(__file__).parent / "emit_spans.py"
SOURCE_LIMITS = ("first_seen", "last_seen", "indicators", "sample_prompts")


def _accounts() -> list[str]:
    with gzip.open(TRAFFIC, "rb") as f:
        return sorted({orjson.loads(line)["account_id"] for line in f})


def emit(traffic: Path, base_url: str, mode: str, *, otlp: str | None = None,
         otlp_json: str | None = None, file: Path | None = None, limit: int = 0) -> None:
    command = [sys.executable, str(EMITTER), str(traffic), base_url, "--mode", mode]
    for flag, value in (("--otlp", otlp), ("--otlp-json", otlp_json), ("--file", file)):
        if value is not None:
            command += [flag, str(value)]
    if limit:
        command += ["--limit", str(limit)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env,
                          check=False)
    assert done.returncode == 0, done.stderr[-4000:]


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory, shared_corpora: Path) -> dict[str, Path]:
    """The traffic sent once; where each source of it was written."""
    base = tmp_path_factory.mktemp("otel-e2e")
    (base / "file").mkdir()
    keys = {f"sk-{a}": {"account_id": a} for a in _accounts()}
    config = load_config(overrides={"identity": {"keys": keys, "unknown_keys": "reject"},
                                    "scoring": {"worker": "inline", "batch_interval_ms": 10},
                                    "mode": "shadow"})
    with ServerThread(replay_app(ReplayCorpus.load(shared_corpora)), lifespan="off") as replay:
        gateway = Gateway(config, upstream_url=replay.url, log_dir=base / "native")
        with ServerThread(gateway_app(gateway), gateway=config) as served, \
                ServerThread(receiver_app(CollectOptions(str(base / "collected-proto")))) as proto, \
                ServerThread(receiver_app(CollectOptions(str(base / "collected-json")))) as as_json:
            emit(TRAFFIC, served.url, "span_only", otlp=proto.url, otlp_json=as_json.url,
                 file=base / "file" / "traces.jsonl")
            gateway.log.flush()
        (base / "events").mkdir()
        emit(TRAFFIC, replay.url, "event_only", file=base / "events" / "traces.jsonl")
    return {"native": base / "native", "proto": base / "collected-proto",
            "json": base / "collected-json", "file": base / "file", "events": base / "events",
            "base": base}


BEHAVIOR = "its behavior agrees with the accounts"


def _comparable(findings: dict[str, Any]) -> dict[str, Any]:
    """What findings of the same traffic must share whatever its source (module docstring)."""
    accounts = sorted(({k: a[k] for k in ("account_id", "verdict", "score", "campaign_id",
                                            "signals")}
                       | {"reasons": [r for r in a["reasons"] if not r.startswith(BEHAVIOR)]}
                       for a in findings["accounts"]), key=lambda a: a["account_id"])
    campaigns = [{k: v for k, v in c.items() if k not in SOURCE_LIMITS}
                 for c in findings["campaigns"]]
    inp = findings["input"]
    return {"accounts": accounts, "campaigns": campaigns,
            "input": {k: inp[k] for k in ("exchanges", "accounts", "quarantined")}}


@pytest.fixture(scope="module")
def scanned(replayed: dict[str, Path]) -> dict[str, dict[str, Any]]:
    out = replayed["base"] / "findings"
    return {name: run_scan_job(ScanJob([replayed[name]], None, out / f"{name}.json"))[0]
            for name in ("native", "proto", "json", "file", "events")}


def test_the_native_log_of_the_traffic_has_findings_to_compare(
        scanned: dict[str, dict[str, Any]]) -> None:
    native = scanned["native"]
    assert native["input"]["exchanges"] == 547
    assert native["campaigns"], "the traffic holds a campaign: the comparison must not be empty"
    assert any(a["verdict"] == "extraction" for a in native["accounts"])


@pytest.mark.parametrize("source", ["proto", "json", "file", "events"])
def test_spans_give_the_findings_of_the_native_log(scanned: dict[str, dict[str, Any]],
                                                   source: str) -> None:
    assert _comparable(scanned[source]) == _comparable(scanned["native"])


@pytest.mark.parametrize("source", ["proto", "json", "file"])
def test_spans_scan_names_what_spans_lack(scanned: dict[str, dict[str, Any]],
                                          source: str) -> None:
    inp = scanned[source]["input"]
    assert {"payment_fingerprint", "account_created", "ip", "user_agent"} <= set(
        inp["fields_missing"])
    not_computed = {s["signal"] for s in inp["signals_not_computed"]}
    assert {"payment_links", "creation_batches", "infrastructure_indicators"} <= not_computed
    assert "user_agent" not in scanned["native"]["input"]["fields_missing"]


def test_span_records_carry_the_gateways_conversation(replayed: dict[str, Path]) -> None:
    """Record by record: the conversation, system prompt, model and account the spans give
    are the gateway's, and the answers and token counts the client saw."""
    def records(folder: Path) -> list[dict[str, Any]]:
        rows = [r for path in sorted(folder.iterdir()) for chunk in read_file(path)
                for r in chunk.batch.to_pylist()]
        return sorted(rows, key=lambda r: (r["account_id"], orjson.dumps(r["messages"])))

    native, spans = records(replayed["native"]), records(replayed["file"])
    assert len(native) == len(spans) == 547
    for n, s in zip(native, spans, strict=True):
        for name in ("account_id", "model", "messages", "system", "response"):
            assert n[name] == s[name], name
        assert s["input_tokens"] == n["input_tokens"] and s["output_tokens"] == n["output_tokens"]
        assert abs((n["ts"] - s["ts"]).total_seconds()) < 30
        assert orjson.loads(s["extra"])["otel"]["service_name"] == "adapter-test-client"
