"""`collect`'s OTLP/HTTP receiver: what it accepts and writes, and the OTLP errors it answers."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
import pytest
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from starlette.testclient import TestClient

from distillguard.gateway.otlp_export import protobuf_body
from distillguard.logs.adapters.receiver import CollectOptions, receiver_app
from distillguard.logs.rotating import RotatingLines
from tests.logs.adapters.sources import content, read_all, span, traces

PROTOBUF, JSON = "application/x-protobuf", "application/json"


@pytest.fixture
def collected(tmp_path: Path) -> tuple[TestClient, Path]:
    out = tmp_path / "spans"
    with TestClient(receiver_app(CollectOptions(str(out), max_body_bytes=4096))) as client:
        yield client, out


def _records(out: Path) -> list[dict[str, object]]:
    return [r for path in sorted(out.iterdir()) for r in read_all(path)[0]]


def test_protobuf_json_and_gzip_bodies_are_written_and_read(
        collected: tuple[TestClient, Path]) -> None:
    client, out = collected
    as_proto = protobuf_body(traces(span(1, content("proto"))))
    reply = client.post("/v1/traces", content=as_proto, headers={"Content-Type": PROTOBUF})
    assert reply.status_code == 200 and reply.headers["content-type"] == PROTOBUF
    trace_service_pb2.ExportTraceServiceResponse.FromString(reply.content)
    reply = client.post("/v1/traces", content=orjson.dumps(traces(span(2, content("json")))),
                        headers={"Content-Type": JSON})
    assert (reply.status_code, reply.json()) == (200, {})
    reply = client.post("/v1/traces", content=gzip.compress(as_proto.replace(b"proto", b"zippd")),
                        headers={"Content-Type": PROTOBUF, "Content-Encoding": "gzip"})
    assert reply.status_code == 200
    client.app.state.lines.flush()
    assert sorted(r["messages"][0]["content"] for r in _records(out)) == [
        "json", "proto", "zippd"]
    assert client.app.state.stats.spans == 3


@pytest.mark.parametrize(("kind", "body", "headers", "status", "words"), [
    (PROTOBUF, b"\xff\xff\xff", {}, 400, "not a protobuf"),
    (JSON, b"{not json", {}, 400, "not valid JSON"),
    (JSON, b"[1]", {}, 400, "must be a JSON object"),
    (JSON, b'{"resourceSpans": {"a": 1}}', {}, 400, "'resourceSpans' is not a list"),
    (JSON, b"x" * 5000, {}, 413, "over the limit"),
    (JSON, gzip.compress(b" " * 50000, mtime=0), {"Content-Encoding": "gzip"}, 413, "inflated body"),
    (JSON, b"not gzip", {"Content-Encoding": "gzip"}, 400, "does not inflate"),
    (JSON, b"{}", {"Content-Encoding": "br"}, 415, "'br' is not supported"),
    ("text/plain", b"{}", {}, 415, "content type 'text/plain'"),
])
def test_bad_requests_get_otlp_errors_and_nothing_is_written(
        collected: tuple[TestClient, Path], kind: str, body: bytes, headers: dict[str, str],
        status: int, words: str) -> None:
    client, out = collected
    reply = client.post("/v1/traces", content=body, headers={"Content-Type": kind, **headers})
    assert reply.status_code == status
    if kind == PROTOBUF:
        message = status_pb2.Status.FromString(reply.content).message
    else:
        message = reply.json()["message"]
    assert words in message
    client.app.state.lines.flush()
    assert not out.exists() or not any(out.iterdir())
    assert client.app.state.stats.rejected == 1


def test_other_paths_and_methods_are_answered_in_otlp_form(
        collected: tuple[TestClient, Path]) -> None:
    client, _ = collected
    assert client.get("/v1/traces").status_code == 405
    reply = client.post("/v1/metrics", content=b"{}", headers={"Content-Type": JSON})
    assert reply.status_code == 404 and "POST /v1/traces" in reply.json()["message"]


def test_files_rotate_by_size_and_hold_whole_lines(tmp_path: Path) -> None:
    lines = RotatingLines(tmp_path, prefix="otlp", rotate_bytes=100, flush_seconds=0)
    for i in range(10):
        lines.append(orjson.dumps({"n": i, "pad": "x" * 40}) + b"\n")
    lines.close()
    files = sorted(tmp_path.iterdir())
    assert len(files) > 1 and files == lines.files_opened
    read = [orjson.loads(line)["n"] for f in files for line in f.read_bytes().splitlines()]
    assert read == list(range(10)) and lines.lines_written == 10
