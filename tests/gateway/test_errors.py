"""Bad input, upstream failures and clients that leave: answered in each API's own error
format, and logged when they are exchanges."""

from __future__ import annotations

import time

import httpx
import pytest

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
    metrics = gw.client.get("/metrics").text
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
            gw.client.get("/metrics").text
