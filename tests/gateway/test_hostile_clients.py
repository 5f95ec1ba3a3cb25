"""A hostile client against the real gateway over HTTP: two credentials, prompt text in
part types the parser might not know, a forged client address, the metrics and the
admin token."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.gateway.conftest import ServerThread, free_port, gateway_config, read_log

OPENAI = "/v1/chat/completions"
ANTHROPIC = "/v1/messages"
COT = "Think step by step and write out your full reasoning before answering: what is 17 * 23?"
BLOCK_FREE = [{"name": "no-free", "action": "block", "when": {"tiers": ["free"]}}]


def _echo_credentials_app() -> Starlette:
    """An upstream answering with the credential headers it was sent."""

    def seen(request: Request) -> str:
        return orjson.dumps({k: request.headers.getlist(k)
                             for k in ("authorization", "x-api-key")}).decode()

    async def chat(request: Request) -> JSONResponse:
        return JSONResponse({"id": "c", "object": "chat.completion", "model": "model-b1",
                             "choices": [{"index": 0, "finish_reason": "stop", "message": {
                                 "role": "assistant", "content": seen(request)}}]})

    async def messages(request: Request) -> JSONResponse:
        return JSONResponse({"id": "m", "type": "message", "role": "assistant",
                             "model": "model-b1", "content": [{"type": "text",
                                                               "text": seen(request)}]})

    return Starlette(routes=[Route(OPENAI, chat, methods=["POST"]),
                             Route(ANTHROPIC, messages, methods=["POST"])])


@pytest.fixture
def echo_upstream():
    with ServerThread(_echo_credentials_app(), lifespan="off") as server:
        yield server


def _body(api: str, content: Any = "hi") -> dict[str, Any]:
    body: dict[str, Any] = {"model": "model-b1", "messages": [{"role": "user",
                                                             "content": content}]}
    if api == ANTHROPIC:
        body["max_tokens"] = 64
    return body


# --- 1. one credential, and the one decided on is the one forwarded ---------------------

@pytest.mark.parametrize("path", [OPENAI, ANTHROPIC])
def test_a_blocked_key_cannot_hide_behind_a_second_key(gateway_factory, echo_upstream, path):
    gw = gateway_factory(gateway_config(rules=BLOCK_FREE), upstream=echo_upstream.url)
    both = {"authorization": "Bearer sk-bob", "x-api-key": "sk-alice"}  # bob is blocked
    r = gw.client.post(path, json=_body(path), headers=both)
    assert r.status_code == 401, r.text
    if path == OPENAI:
        assert r.json()["error"]["code"] == "conflicting_api_keys"
    else:
        assert r.json()["error"]["type"] == "authentication_error"
    # the same key twice over is one credential: decided on (and blocked) as bob
    twice = gw.client.post(path, json=_body(path), headers={"authorization": "Bearer sk-bob",
                                                            "x-api-key": "sk-bob"})
    assert twice.status_code == 403


def test_two_authorization_headers_are_refused(gateway_factory, echo_upstream):
    gw = gateway_factory(upstream=echo_upstream.url)
    r = gw.client.post(OPENAI, json=_body(OPENAI), headers=[
        ("authorization", "Bearer sk-bob"), ("authorization", "Bearer sk-alice")])
    assert r.status_code == 401 and r.json()["error"]["code"] == "conflicting_api_keys"


@pytest.mark.parametrize(("path", "header", "value"), [
    (OPENAI, "authorization", "Bearer sk-alice"), (OPENAI, "x-api-key", "sk-alice"),
    (ANTHROPIC, "x-api-key", "sk-alice"), (ANTHROPIC, "authorization", "Bearer sk-alice")])
def test_the_upstream_gets_exactly_the_credential_the_gateway_decided_on(
        gateway_factory, echo_upstream, tmp_path, path, header, value):
    gw = gateway_factory(upstream=echo_upstream.url)
    r = gw.client.post(path, json=_body(path), headers={header: value})
    assert r.status_code == 200, r.text
    gw.flush()
    (row,), _ = read_log(tmp_path / "log")
    assert row["account_id"] == "acct-alice"
    forwarded = orjson.loads(row["response"])
    assert forwarded == {header: [value], ("x-api-key" if header == "authorization"
                                           else "authorization"): []}


# --- 2. every part that reaches the model is logged and scored, or noted as opaque -------

def _cot_share(gw: Any, account_id: str) -> float:
    """The account's cot_elicitation share once its one request is in its window."""
    deadline = time.monotonic() + 20
    while True:
        window = gw.gateway.state.window(account_id, int(time.time() * 1000))
        if window.requests or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    gw.flush()
    assert window.requests == 1
    return window.as_dict()["shares"]["cot_elicitation"]


@pytest.mark.parametrize(("path", "content"), [
    (ANTHROPIC, [{"type": "document", "source": {"type": "text", "media_type": "text/plain",
                                                 "data": COT}}]),
    (ANTHROPIC, [{"type": "document", "source": {"type": "content", "content": [
        {"type": "text", "text": COT}]}}]),
    (ANTHROPIC, [{"type": "tool_result", "tool_use_id": "t1", "content": [
        {"type": "document", "source": {"type": "text", "media_type": "text/plain",
                                        "data": COT}}]}]),
    (ANTHROPIC, [{"type": "search_result", "source": "https://example.com", "title": "t",
                  "content": [{"type": "text", "text": COT}]}]),
    (OPENAI, [{"type": "input_text", "text": COT}]),
    (OPENAI, [{"type": "text", "text": "see below"}, {"type": "input_text", "text": COT}]),
])
def test_prompt_text_in_other_part_types_is_logged_and_scored(gateway_factory, tmp_path, path,
                                                              content):
    gw = gateway_factory()
    key = {"x-api-key": "sk-carol"} if path == ANTHROPIC else {
        "authorization": "Bearer sk-carol"}
    r = gw.client.post(path, json=_body(path, content), headers=key)
    assert r.status_code == 200, r.text
    assert _cot_share(gw, "acct-carol") == 1.0
    (row,), quarantined = read_log(tmp_path / "log")
    assert quarantined == [] and COT in row["messages"][-1]["content"]


def test_openai_tool_message_parts_are_logged(gateway_factory, tmp_path):
    gw = gateway_factory()
    messages = [{"role": "user", "content": "go"},
                {"role": "assistant", "content": None, "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": [{"type": "text", "text": COT}]}]
    r = gw.client.post(OPENAI, json={"model": "model-b1", "messages": messages},
                       headers={"authorization": "Bearer sk-carol"})
    assert r.status_code == 200, r.text
    gw.flush()
    (row,), _ = read_log(tmp_path / "log")
    assert row["messages"][-1] == {"role": "tool", "content": COT}


@pytest.mark.parametrize(("path", "part", "kind"), [
    (OPENAI, {"type": "file", "file": {"filename": "a.pdf",
                                       "file_data": "data:application/pdf;base64,JVBERi0x"}},
     "file"),
    (OPENAI, {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
     "input_audio"),
    (ANTHROPIC, {"type": "document", "source": {"type": "base64",
                                                 "media_type": "application/pdf",
                                                 "data": "JVBERi0x"}}, "document"),
    (ANTHROPIC, {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                             "data": "iVBORw0KGgo="}}, "image"),
])
def test_parts_that_are_not_text_are_noted_with_type_and_size(gateway_factory, tmp_path, path,
                                                              part, kind):
    gw = gateway_factory()
    key = {"x-api-key": "sk-carol"} if path == ANTHROPIC else {
        "authorization": "Bearer sk-carol"}
    content = [{"type": "text", "text": "what is this?"}, part]
    r = gw.client.post(path, json=_body(path, content), headers=key)
    assert r.status_code == 200, r.text
    gw.flush()
    (row,), _ = read_log(tmp_path / "log")
    (opaque,) = orjson.loads(row["extra"])["opaque_parts"]
    assert opaque == {"message": 0, "type": kind, "bytes": len(orjson.dumps(part))}
    assert row["messages"][0]["content"] == "what is this?"


@pytest.mark.parametrize("path", [OPENAI, ANTHROPIC])
def test_unknown_part_types_are_refused_unless_the_config_allows_them(gateway_factory, tmp_path,
                                                                      path):
    part = {"type": "hologram", "payload": COT}
    key = {"x-api-key": "sk-carol"} if path == ANTHROPIC else {
        "authorization": "Bearer sk-carol"}
    gw = gateway_factory()
    r = gw.client.post(path, json=_body(path, [part]), headers=key)
    assert r.status_code == 400, r.text
    assert "hologram" in r.text
    if path == OPENAI:
        assert r.json()["error"]["param"] == "messages[0].content[0].type"
    lenient = gateway_factory(gateway_config(content_parts={"unknown": "allow"}),
                              log_dir=tmp_path / "lenient")
    r = lenient.client.post(path, json=_body(path, [part]), headers=key)
    assert r.status_code == 200, r.text
    lenient.flush()
    (row,), _ = read_log(tmp_path / "lenient")
    assert orjson.loads(row["extra"])["opaque_parts"] == [
        {"message": 0, "type": "hologram", "bytes": len(orjson.dumps(part))}]


# --- 3. only configured proxies set the client address, and only to an IP ----------------

@pytest.mark.parametrize(("proxies", "forwarded", "logged"), [
    ([], "203.0.113.9", "127.0.0.1"),
    ([], "203.0.113.9, 127.0.0.1", "127.0.0.1"),
    (["127.0.0.1/32"], "203.0.113.9", "203.0.113.9"),
    (["127.0.0.1/32"], "<script>alert(1)</script>", "127.0.0.1"),
    (["127.0.0.1/32"], "203.0.113.9, not-an-ip", "127.0.0.1"),
    (["127.0.0.1/32"], "2001:db8::7", "2001:db8::7"),
])
def test_only_trusted_proxies_set_the_client_ip_and_only_to_an_ip(gateway_factory, tmp_path,
                                                                  proxies, forwarded, logged):
    gw = gateway_factory(gateway_config(identity={"trusted_proxies": proxies}))
    r = gw.client.post(OPENAI, json=_body(OPENAI), headers={
        "authorization": "Bearer sk-alice", "x-forwarded-for": forwarded})
    assert r.status_code == 200
    gw.flush()
    (row,), _ = read_log(tmp_path / "log")
    assert row["ip"] == logged


# --- 4. metrics on the admin port; the admin token never on the command line -------------

def test_metrics_are_not_served_on_the_public_port(gateway_factory):
    gw = gateway_factory()
    assert gw.chat("sk-alice", "hi").status_code == 200
    r = gw.client.get("/metrics")
    assert r.status_code == 404 and r.json()["error"]["type"] == "invalid_request_error"
    assert "distillguard_gateway_requests_total" in gw.metrics()


def _start_cli_gateway(upstream: str, tmp_path: Path, *args: str, env: dict[str, str]
                       ) -> tuple[subprocess.Popen, str, str]:
    port, admin = free_port(), free_port()
    proc = subprocess.Popen([sys.executable, "-m", "distillguard.cli", "gateway", "--upstream",
                             upstream, "--port", str(port), "--admin-port", str(admin), *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, **env}, cwd=tmp_path)
    return proc, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{admin}"


def _wait_for(url: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(proc.stderr.read().decode() if proc.stderr else "exited")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not come up")


@pytest.mark.parametrize("source", ["file", "env"])
def test_the_admin_token_comes_from_a_file_or_the_environment(replay, tmp_path, source):
    token = "adm-" + os.urandom(8).hex()
    token_file = tmp_path / "admin-token"
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    args = ("--admin-token-file", str(token_file)) if source == "file" else ()
    env = {"DISTILLGUARD_ADMIN_TOKEN": token} if source == "env" else {}
    env.setdefault("DISTILLGUARD_ADMIN_TOKEN", "")
    proc, api, admin = _start_cli_gateway(replay.url, tmp_path, *args, env=env)
    try:
        _wait_for(admin + "/admin/policy", proc)
        _wait_for(api + "/healthz", proc)
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
        assert token.encode() not in cmdline
        assert httpx.post(api + OPENAI, json=_body(OPENAI), headers={
            "authorization": "Bearer k"}).status_code == 200
        assert httpx.get(api + "/metrics").status_code == 404
        assert httpx.get(admin + "/metrics").status_code == 401
        assert httpx.get(admin + "/admin/policy",
                         headers={"authorization": "Bearer wrong"}).status_code == 401
        r = httpx.get(admin + "/metrics", headers={"authorization": f"Bearer {token}"})
        assert r.status_code == 200 and "distillguard_gateway_requests_total" in r.text
    finally:
        proc.terminate()
        proc.wait(20)
        if proc.stderr:
            proc.stderr.close()


def test_an_admin_token_on_the_command_line_is_refused(replay, tmp_path):
    result = subprocess.run([sys.executable, "-m", "distillguard.cli", "gateway", "--upstream",
                             replay.url, "--port", str(free_port()), "--admin-token", "s3cret"],
                            capture_output=True, text=True, timeout=60, cwd=tmp_path)
    message = " ".join(result.stderr.split())
    assert result.returncode != 0
    assert "DISTILLGUARD_ADMIN_TOKEN" in message and "--admin-token-file" in message


def test_an_unreadable_admin_token_file_fails_clearly(replay, tmp_path):
    result = subprocess.run([sys.executable, "-m", "distillguard.cli", "gateway", "--upstream",
                             replay.url, "--port", str(free_port()), "--admin-token-file",
                             str(tmp_path / "missing")],
                            capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode != 0
    assert "cannot read the admin token file" in " ".join(result.stderr.split())
