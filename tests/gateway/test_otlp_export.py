"""The gateway's exchanges as OpenTelemetry GenAI spans: sent to `collect`, they scan to the
findings of the gateway's own log; an endpoint that is down or refuses never fails a request."""

from __future__ import annotations

import asyncio
import gzip
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from distillguard.engines.scan_job import ScanJob, run_scan_job
from distillguard.gateway import Gateway, gateway_app, load_config
from distillguard.gateway.config import OtlpExport
from distillguard.gateway.otlp_export import SpanExporter
from distillguard.logs.adapters.receiver import CollectOptions, receiver_app
from tests.conftest import make_record
from tests.gateway.conftest import ServerThread, free_port

TRAFFIC = Path(__file__).parents[1] / "logs" / "adapters" / "files" / "traffic.jsonl.gz"


def _traffic() -> list[dict[str, Any]]:
    with gzip.open(TRAFFIC, "rb") as f:
        return [orjson.loads(line) for line in f]


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["http/protobuf", "http/json"])
def test_spans_sent_to_collect_scan_to_the_logs_findings(
        tmp_path: Path, replay: ServerThread, protocol: str) -> None:
    traffic = _traffic()
    keys = {f"sk-{a}": {"account_id": a, "payment_fingerprint": f"pf-{hash(a) % 7}"}
            for a in {r["account_id"] for r in traffic}}
    receiver = receiver_app(CollectOptions(str(tmp_path / "spans"), flush_seconds=0.2))
    with ServerThread(receiver) as collector:
        config = load_config(overrides={
            "identity": {"keys": keys, "unknown_keys": "reject"}, "mode": "shadow",
            "scoring": {"worker": "inline"},
            "otlp": {"endpoint": collector.url, "protocol": protocol, "flush_seconds": 0.2}})
        gateway = Gateway(config, upstream_url=replay.url, log_dir=tmp_path / "log")
        with ServerThread(gateway_app(gateway), gateway=config) as served, \
                httpx.Client(base_url=served.url, timeout=60) as client:
            for r in traffic:
                system = [{"role": "system", "content": r["system"]}] if r.get("system") else []
                reply = client.post("/v1/chat/completions", json={
                    "model": r["model"], "messages": system + r["messages"]},
                    headers={"Authorization": f"Bearer sk-{r['account_id']}"})
                assert reply.status_code == 200, reply.text
            # sent while serving, on the exporter's timer (not left to the shutdown, which
            # a loaded machine may not finish within the server thread's join)
            exporter = gateway.spans
            assert exporter is not None
            _wait_for(lambda: receiver.state.stats.spans >= len(traffic), lambda: (
                f"collector has {receiver.state.stats}; exporter sent {exporter.spans_sent}, "
                f"dropped {exporter.spans_dropped}, queued {exporter.queued}, "
                f"failed sends {exporter.export_failures}"))
        assert (exporter.spans_sent, exporter.spans_dropped) == (len(traffic), 0)
        _wait_for(lambda: receiver.state.lines.lines_written >= receiver.state.stats.requests)
    scans = {name: run_scan_job(ScanJob([tmp_path / name], None, tmp_path / f"{name}.json"))[0]
             for name in ("log", "spans")}
    assert scans["log"]["input"]["exchanges"] == len(traffic)
    assert scans["log"]["campaigns"], "the traffic holds a campaign"
    for findings in scans.values():
        findings.pop("generated_at")
    assert scans["spans"] == scans["log"]


def _wait_for(condition: Callable[[], bool], state: Callable[[], str] = lambda: "",
              seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"not done in {seconds} s: {state()}"
        time.sleep(0.1)


class _Endpoint:
    """An OTLP endpoint answering each request with the next status of ``statuses``."""

    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses)
        self.bodies: list[bytes] = []
        self.app = Starlette(routes=[Route("/v1/traces", self.traces, methods=["POST"])])

    async def traces(self, request: Request) -> Response:
        self.bodies.append(await request.body())
        status = self.statuses.pop(0) if self.statuses else 200
        return Response(b"", status_code=status, media_type="application/x-protobuf")


def _export(endpoint: str, records: int, *, max_queue: int = 100, flushes: int = 1,
            prompt: str | None = None, protocol: str = "http/protobuf",
            ) -> tuple[int, int, int, int]:
    """Spans sent, dropped, still queued and failed sends after ``flushes`` flushes (before
    the exporter is closed, which tries once more)."""
    async def run() -> tuple[int, int, int, int]:
        exporter = SpanExporter(OtlpExport(endpoint=endpoint, max_queue_spans=max_queue,
                                           max_batch_spans=4, flush_seconds=60,
                                           timeout_seconds=2, protocol=protocol))
        await exporter.start()
        long_prompt = {"messages": [{"role": "user", "content": prompt}]} if prompt else {}
        for i in range(records):
            exporter.write(make_record(i, ts=1772467200000 + i, **long_prompt))
        for _ in range(flushes):
            await exporter.flush()
        counts = (exporter.spans_sent, exporter.spans_dropped, exporter.queued,
                  exporter.export_failures)
        await exporter.close()
        return counts

    return asyncio.run(run())


def test_a_batch_refused_for_a_while_is_sent_again() -> None:
    endpoint = _Endpoint(503)
    with ServerThread(endpoint.app) as server:
        counts = _export(server.url, 6, flushes=2)
    assert counts == (6, 0, 0, 1) and len(endpoint.bodies) == 3


def test_a_batch_sent_again_keeps_its_span_ids() -> None:
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

    endpoint = _Endpoint(503)
    with ServerThread(endpoint.app) as server:
        assert _export(server.url, 4, flushes=2) == (4, 0, 0, 1)
    first, again = ([(s.trace_id, s.span_id) for s in trace_service_pb2.ExportTraceServiceRequest
                     .FromString(body).resource_spans[0].scope_spans[0].spans]
                    for body in endpoint.bodies[:2])
    assert first == again and len(set(first)) == 4


def test_a_batch_refused_for_good_is_dropped_and_counted() -> None:
    endpoint = _Endpoint(400)
    with ServerThread(endpoint.app) as server:
        counts = _export(server.url, 6)
    assert counts == (2, 4, 0, 1)


@pytest.mark.parametrize("protocol", ["http/protobuf", "http/json"])
def test_a_batch_over_a_mebibyte_is_sent(protocol: str) -> None:
    """aiohttp warns on a bytes body over 1 MiB, and a warnings filter turning that into an
    error once lost whole batches (the end-to-end test above saw it now and then)."""
    endpoint = _Endpoint()
    with ServerThread(endpoint.app) as server:
        counts = _export(server.url, 4, prompt="long prompt " * 30_000, protocol=protocol)
    assert counts == (4, 0, 0, 0)
    assert len(endpoint.bodies) == 1 and len(endpoint.bodies[0]) > 1 << 20


def test_an_endpoint_that_is_down_keeps_the_newest_spans_queued() -> None:
    assert _export(f"http://127.0.0.1:{free_port()}", 10, max_queue=6) == (0, 4, 6, 1)


def test_a_gateway_with_its_span_endpoint_down_serves_every_request(
        tmp_path: Path, replay: ServerThread) -> None:
    config = load_config(overrides={
        "identity": {"keys": {"sk-a": {"account_id": "a"}}, "unknown_keys": "reject"},
        "scoring": {"worker": "inline"},
        "otlp": {"endpoint": f"http://127.0.0.1:{free_port()}", "flush_seconds": 0.05}})
    gateway = Gateway(config, upstream_url=replay.url, log_dir=None)
    with ServerThread(gateway_app(gateway), gateway=config) as served:
        for i in range(5):
            reply = httpx.post(f"{served.url}/v1/chat/completions", timeout=30,
                               headers={"Authorization": "Bearer sk-a"},
                               json={"model": config.models[0],
                                     "messages": [{"role": "user", "content": f"hi {i}"}]})
            assert reply.status_code == 200, reply.text
    assert gateway.spans is not None and gateway.spans.export_failures >= 1
    assert gateway.spans.spans_sent == 0


def test_receiver_and_exporter_agree_on_the_protobuf() -> None:
    """A span sent as protobuf is written by collect as the OTLP JSON it was built from."""
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

    from distillguard.gateway.otlp_export import protobuf_body
    from distillguard.logs.adapters.otlp_spans import exchange_span, traces_request
    from distillguard.logs.adapters.receiver import to_otlp_json

    request = traces_request([exchange_span(make_record(1, ts=1772467200000))], {"a": 1})
    message = trace_service_pb2.ExportTraceServiceRequest.FromString(protobuf_body(request))
    back = to_otlp_json(message)
    assert back["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"] == \
        request["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"]
    assert back["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"] == \
        request["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"]
