"""Bad input, upstream failures and clients that leave: answered in each API's own error
format, and logged when they are exchanges."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from tests.gateway.conftest import ServerThread, free_port, gateway_config, read_log

OPENAI = "/v1/chat/completions"
ANTHROPIC = "/v1/messages"
MSG = [{"role": "user", "content": "hi"}]


def _assert_openai_error(r: httpx.Response, status: int, code: str | None = None) -> dict:
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    if code:
        assert error["code"] == code
    return error


def _assert_anthropic_error(r: httpx.Response, status: int, kind: str) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["type"] == "error" and body["error"]["type"] == kind and body["error"]["message"]
    return body["error"]


@pytest.mark.parametrize(("body", "param"), [
    (b"{not json", None),
    (b"[1, 2]", None),
    (b'{"messages": [{"role": "user", "content": "hi"}]}', "model"),
    (b'{"model": "model-b1", "messages": "hi"}', "messages"),
    (b'{"model": "model-b1", "messages": []}', "messages"),
    (b'{"model": "model-b1", "messages": [{"role": "wizard", "content": "hi"}]}',
     "messages[0].role"),
    (b'{"model": "model-b1", "messages": [{"role": "user", "content": 7}]}',
     "messages[0].content"),
    (b'{"model": "model-b1", "stream": "yes", "messages": [{"role": "user", "content": "a"}]}',
     "stream"),
    (b'{"model": "model-b1", "max_tokens": -1, "messages": [{"role": "user", "content": "a"}]}',
     "max_tokens"),
])
def test_openai_bad_input_is_400_naming_the_param(gateway_factory, body: bytes, param):
    gw = gateway_factory()
    r = gw.client.post(OPENAI, content=body, headers={"authorization": "Bearer sk-alice"})
    error = _assert_openai_error(r, 400)
    assert error["type"] == "invalid_request_error" and error["param"] == param


@pytest.mark.parametrize("body", [
    b"{not json",
    b'{"model": "model-b1", "messages": [{"role": "user", "content": "hi"}]}',  # no max_tokens
    b'{"model": "model-b1", "max_tokens": 5, "messages": [{"role": "system", "content": "x"}]}',
    b'{"model": "model-b1", "max_tokens": 5, "messages": [{"role": "user", "content": []}]}',
    b'{"model": "model-b1", "max_tokens": 5, "messages": [{"role": "user", "content": '
    b'[{"type": "text", "text": 1}]}]}',
])
def test_anthropic_bad_input_is_400_in_anthropic_format(gateway_factory, body: bytes):
    gw = gateway_factory()
    r = gw.client.post(ANTHROPIC, content=body, headers={"x-api-key": "sk-alice"})
    _assert_anthropic_error(r, 400, "invalid_request_error")


def test_unknown_model_is_400_in_both_formats(gateway_factory):
    gw = gateway_factory()
    error = _assert_openai_error(gw.chat("sk-alice", "hi", model="gpt-9"), 400, "model_not_found")
    assert error["param"] == "model" and "gpt-9" in error["message"]
    message = _assert_anthropic_error(gw.messages("sk-alice", "hi", model="gpt-9"), 400,
                                      "invalid_request_error")["message"]
    assert "gpt-9" in message


def test_oversized_body_is_413_before_parsing(gateway_factory):
    gw = gateway_factory(gateway_config(max_body_bytes=1000))
    big = "x" * 2000
    _assert_openai_error(gw.chat("sk-alice", big), 413, "request_too_large")
    _assert_anthropic_error(gw.messages("sk-alice", big), 413, "request_too_large")
    assert gw.chat("sk-alice", "small").status_code == 200


def test_missing_or_rejected_key_is_401(gateway_factory):
    gw = gateway_factory()
    r = gw.client.post(OPENAI, json={"model": "model-b1", "messages": MSG})
    _assert_openai_error(r, 401, "missing_api_key")
    strict = gateway_factory(gateway_config(identity={"unknown_keys": "reject"}))
    _assert_anthropic_error(strict.messages("sk-nobody", "hi"), 401, "authentication_error")
    assert strict.messages("sk-alice", "hi").status_code == 200


def test_upstream_down_is_502_and_logged(gateway_factory, tmp_path):
    gw = gateway_factory(upstream=f"http://127.0.0.1:{free_port()}")
    _assert_openai_error(gw.chat("sk-alice", "hi"), 502, "upstream_unreachable")
    _assert_anthropic_error(gw.messages("sk-alice", "hi", stream=True), 502, "api_error")
    gw.flush()
    rows, quarantined = read_log(tmp_path / "log")
    assert quarantined == [] and [r["status"] for r in rows] == [502, 502]
    assert all("upstream_unreachable" in r["extra"] for r in rows)
    metrics = gw.metrics()
    assert 'distillguard_gateway_upstream_errors_total{api="openai",kind="unreachable"} 1.0' \
        in metrics


def test_upstream_timeout_is_504_and_logged(gateway_factory, tmp_path):
    gw = gateway_factory(gateway_config(upstream={"read_timeout_seconds": 0.2}))
    _assert_openai_error(gw.chat("sk-alice", "slow [replay:sleep=1]"), 504, "upstream_timeout")
    gw.flush()
    (row,), _ = read_log(tmp_path / "log")
    assert row["status"] == 504


def test_upstream_error_status_is_passed_through_and_logged(gateway_factory, tmp_path):
    gw = gateway_factory()
    r = gw.chat("sk-alice", "please fail [replay:error]")
    assert r.status_code == 500 and r.json()["error"]["type"] == "server_error"
    gw.flush()
    (row,), _ = read_log(tmp_path / "log")
    assert row["status"] == 500


def test_client_leaving_mid_stream_is_logged_and_frees_the_upstream_connection(
        gateway_factory, replay_corpus, tmp_path):
    from distillguard.replay import replay_app

    app = replay_app(replay_corpus)
    with ServerThread(app, lifespan="off") as upstream:
        gw = gateway_factory(upstream=upstream.url)
        body = {"model": "model-b1", "stream": True,
                "messages": [{"role": "user", "content": "tell me [replay:event_gap=0.2]"}]}
        with gw.client.stream("POST", OPENAI, json=body,
                              headers={"authorization": "Bearer sk-alice"}) as r:
            chunks = r.iter_raw()  # kept: a dropped iterator closes the response
            assert next(chunks).startswith(b"data:")
            assert app.state.open_streams[0] == 1
        deadline = time.monotonic() + 5
        while app.state.open_streams[0] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert app.state.open_streams[0] == 0  # the gateway closed its upstream stream
        del chunks
        gw.flush()
        (row,), _ = read_log(tmp_path / "log")
        assert row["status"] == 499 and "client_disconnected" in row["extra"]
        assert 'distillguard_gateway_client_disconnects_total{api="openai"} 1.0' in \
            gw.metrics()


def _scripted_upstream(chunks: list[bytes], content_type: str) -> Starlette:
    """An upstream answering every request 200 with ``chunks``, one at a time."""

    async def answer(request: Request) -> StreamingResponse:
        async def body() -> AsyncIterator[bytes]:
            for chunk in chunks:
                yield chunk
                await asyncio.sleep(0.01)

        return StreamingResponse(body(), media_type=content_type)

    return Starlette(routes=[Route(OPENAI, answer, methods=["POST"]),
                             Route(ANTHROPIC, answer, methods=["POST"])])


_OPENAI_CHUNK = b'data: {"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, ' \
    b'"delta": {"content": "Hello"}, "finish_reason": null}]}\n\n'
_ANTHROPIC_EVENT = b'event: content_block_delta\ndata: {"type": "content_block_delta", ' \
    b'"index": 0, "delta": {"type": "text_delta", "text": "Hello"}}\n\n'


def _stream(gw, path: str) -> httpx.Response:
    body: dict = {"model": "model-b1", "stream": True, "messages": MSG}
    if path == ANTHROPIC:
        body["max_tokens"] = 16
    return gw.client.post(path, json=body, headers={"x-api-key": "sk-alice"})


@pytest.mark.parametrize("path", [OPENAI, ANTHROPIC])
@pytest.mark.parametrize(("chunks", "content_type"), [
    ([b"<html><body>502 Bad Gateway</body></html>"], "text/html"),
    ([b"\x00\xff\xfe garbage \x01" * 50], "text/event-stream"),
    ([b"data: {not json at all\n\n"], "text/event-stream"),
    ([b"this is: not an event stream\n\n"], "text/event-stream"),
    ([], "text/event-stream"),
])
def test_a_garbage_stream_before_any_event_is_502_in_the_apis_format(
        gateway_factory, tmp_path, path, chunks, content_type):
    with ServerThread(_scripted_upstream(chunks, content_type), lifespan="off") as upstream:
        gw = gateway_factory(upstream=upstream.url)
        r = _stream(gw, path)
        if path == OPENAI:
            _assert_openai_error(r, 502, "upstream_malformed")
        else:
            _assert_anthropic_error(r, 502, "api_error")
        gw.flush()
        (row,), _ = read_log(tmp_path / "log")
    assert row["status"] == 502
    error = orjson.loads(row["extra"])["error"]
    assert error.startswith("upstream_malformed:") and "mid-stream" not in error
    assert f'distillguard_gateway_upstream_errors_total{{api="{path_api(path)}",' \
        f'kind="malformed"}} 1.0' in gw.metrics()


def path_api(path: str) -> str:
    return "anthropic" if path == ANTHROPIC else "openai"


@pytest.mark.parametrize(("path", "good"), [(OPENAI, _OPENAI_CHUNK), (ANTHROPIC, _ANTHROPIC_EVENT)])
@pytest.mark.parametrize("bad", [b"data: {broken\n\n", b"\x00garbage\x00\n\n",
                                 b"data: {\"id\": \"c\", \"choi"])
def test_garbage_after_the_stream_began_ends_it_with_an_error_event(gateway_factory, tmp_path,
                                                                   path, good, bad):
    with ServerThread(_scripted_upstream([good, good, bad, good], "text/event-stream"),
                      lifespan="off") as upstream:
        gw = gateway_factory(upstream=upstream.url)
        r = _stream(gw, path)
        assert r.status_code == 200
        assert r.content.startswith(good + good)  # what was good was passed on
        assert good + good + good not in r.content  # nothing after the failure
        last = r.content.rstrip(b"\n").rsplit(b"\n\n", 1)[-1]
        data = orjson.loads(last.split(b"data: ", 1)[1])
        if path == OPENAI:
            assert data["error"]["code"] == "upstream_malformed"
        else:
            assert last.startswith(b"event: error\n")
            assert data["type"] == "error" and data["error"]["type"] == "api_error"
        gw.flush()
        (row,), _ = read_log(tmp_path / "log")
    assert row["status"] == 502 and row["response"] == "HelloHello"
    assert orjson.loads(row["extra"])["error"].startswith("upstream_malformed mid-stream:")


def test_a_non_streamed_answer_that_is_not_json_is_502(gateway_factory, tmp_path):
    with ServerThread(_scripted_upstream([b"<html>oops</html>"], "application/json"),
                      lifespan="off") as upstream:
        gw = gateway_factory(upstream=upstream.url)
        _assert_openai_error(gw.chat("sk-alice", "hi"), 502, "upstream_malformed")
        gw.flush()
        (row,), _ = read_log(tmp_path / "log")
    assert row["status"] == 502 and orjson.loads(row["extra"])["error"].startswith(
        "upstream_malformed:")


@pytest.mark.parametrize(("path", "good"), [(OPENAI, _OPENAI_CHUNK), (ANTHROPIC, _ANTHROPIC_EVENT)])
def test_a_well_formed_stream_in_odd_pieces_passes_unchanged(gateway_factory, tmp_path, path,
                                                            good):
    """Comments, keep-alives, CRLF line ends, an id field and events cut across reads are
    all server-sent events: none of them is a failure."""
    crlf = good.replace(b"\n", b"\r\n")
    chunks = [b": keep-alive\n\n", good[:17], good[17:] + b"id: 7\nretry: 100\n\n", crlf,
              b"data: [DONE]\n\n" if path == OPENAI else b"event: ping\ndata: {\"type\": "
              b"\"ping\"}\n\n"]
    with ServerThread(_scripted_upstream(chunks, "text/event-stream"),
                      lifespan="off") as upstream:
        gw = gateway_factory(upstream=upstream.url)
        r = _stream(gw, path)
        gw.flush()
        (row,), _ = read_log(tmp_path / "log")
    assert r.status_code == 200
    assert r.content == b"".join(chunks).replace(b"\r\n", b"\n")
    assert row["status"] == 200 and row["response"] == "HelloHello"
    assert "error" not in orjson.loads(row["extra"])
