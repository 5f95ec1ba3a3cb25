"""Both APIs through the gateway to the replay upstream, and what the log keeps of them."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import orjson

from tests.gateway.conftest import gateway_config, read_log

KANE = "Why is Citizen Kane considered the Best Film?"


def _sse_payloads(text: str) -> list[dict]:
    return [orjson.loads(line[5:]) for line in text.splitlines()
            if line.startswith("data:") and line[5:].strip() != "[DONE]"]


def test_openai_answer_is_the_upstreams_and_is_logged(gateway_factory, replay, tmp_path: Path):
    gw = gateway_factory()
    direct = httpx.post(replay.url + "/v1/chat/completions",
                        json={"model": "model-b1", "messages": [{"role": "user", "content": KANE}]})
    r = gw.chat("sk-alice", KANE)
    assert r.status_code == 200
    assert "server" not in r.headers and "date" in r.headers  # the server's name is not told
    answer = r.json()["choices"][0]["message"]["content"]
    assert answer == direct.json()["choices"][0]["message"]["content"]
    assert answer.startswith("The American Film Institute")
    gw.flush()
    rows, quarantined = read_log(tmp_path / "log")
    assert quarantined == []
    (row,) = rows
    assert row["account_id"] == "acct-alice" and row["org_id"] == "org-a"
    assert row["messages"] == [{"role": "user", "content": KANE}]
    assert row["response"] == answer and row["status"] == 200
    assert row["input_tokens"] > 0 and row["output_tokens"] > 0
    assert row["ip"] == "127.0.0.1" and row["verified"] is True
    extra = orjson.loads(row["extra"])
    assert extra["api"] == "openai" and extra["added_ms"] >= 0


def test_anthropic_stream_passes_through_and_logs_answer_and_thinking(gateway_factory, tmp_path):
    gw = gateway_factory()
    body = {"model": "model-b2", "max_tokens": 100, "stream": True, "system": "Be brief.",
            "thinking": {"type": "enabled", "budget_tokens": 50},
            "messages": [{"role": "user", "content": [{"type": "text", "text": KANE}]}]}
    r = gw.client.post("/v1/messages", json=body, headers={"x-api-key": "sk-bob"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = _sse_payloads(r.text)
    text = "".join(e["delta"]["text"] for e in events if e["type"] == "content_block_delta"
                   and e["delta"]["type"] == "text_delta")
    thinking = "".join(e["delta"]["thinking"] for e in events if e["type"] == "content_block_delta"
                       and e["delta"]["type"] == "thinking_delta")
    assert text.startswith("The American Film Institute") and thinking.startswith("The user asks")
    gw.flush()
    (row,), quarantined = read_log(tmp_path / "log")
    assert quarantined == []
    assert row["response"] == text and row["reasoning"] == thinking
    assert row["system"] == "Be brief." and row["model"] == "model-b2"
    assert row["output_tokens"] > 0 and row["input_tokens"] > 0


def test_openai_stream_with_reasoning_and_usage(gateway_factory, tmp_path):
    gw = gateway_factory()
    r = gw.chat("sk-carol", "hello", stream=True, reasoning_effort="low",
                stream_options={"include_usage": True})
    assert r.status_code == 200 and r.text.rstrip().endswith("data: [DONE]")
    chunks = _sse_payloads(r.text)
    content = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    reasoning = "".join(c["choices"][0]["delta"].get("reasoning_content") or ""
                        for c in chunks if c["choices"])
    gw.flush()
    (row,), _ = read_log(tmp_path / "log")
    assert row["response"] == content and row["reasoning"] == reasoning
    assert row["output_tokens"] == chunks[-1]["usage"]["completion_tokens"]


def test_conversation_roles_tools_and_images_are_read_into_the_log_format(gateway_factory,
                                                                         tmp_path):
    gw = gateway_factory()
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": [{"type": "text", "text": "What is in this picture?"},
                                     {"type": "image_url", "image_url": {"url": "data:,"}}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "look", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "a cat"},
    ]
    tools = [{"type": "function", "function": {"name": "look", "parameters": {}}}]
    r = gw.client.post("/v1/chat/completions", json={"model": "model-b1", "messages": messages,
                                                     "tools": tools},
                       headers={"authorization": "Bearer sk-alice"})
    assert r.status_code == 200
    anthropic = [{"role": "user", "content": "weather?"},
                 {"role": "assistant", "content": [{"type": "tool_use", "id": "t1",
                                                    "name": "weather", "input": {"city": "Oslo"}}]},
                 {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1",
                                               "content": "rain"}]}]
    assert gw.messages("sk-alice", "x", messages=anthropic,
                       tools=[{"name": "weather", "input_schema": {}}]).status_code == 200
    gw.flush()
    rows, quarantined = read_log(tmp_path / "log")
    assert quarantined == []
    first, second = sorted(rows, key=lambda r: r["request_id"])
    assert first["system"] == "You are terse." and first["has_image"] is True
    assert [m["role"] for m in first["messages"]] == ["user", "assistant", "tool"]
    assert first["messages"][1]["content"] == "[tool_call look {}]"
    assert first["tools"] == ["look"]
    assert [m["role"] for m in second["messages"]] == ["user", "assistant", "tool"]
    assert second["messages"][1]["content"] == '[tool_use weather {"city":"Oslo"}]'
    assert second["tools"] == ["weather"]


def test_client_ip_from_trusted_proxy_forwarded_for(gateway_factory, tmp_path):
    gw = gateway_factory(gateway_config(identity={"trusted_proxies": ["127.0.0.1/32"]}))
    r = gw.client.post("/v1/chat/completions", json={
        "model": "model-b1", "messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": "Bearer sk-alice",
                 "x-forwarded-for": "198.51.100.9, 127.0.0.1", "user-agent": "probe/1.0"})
    assert r.status_code == 200
    gw.flush()
    (row,), _ = read_log(tmp_path / "log")
    assert row["ip"] == "198.51.100.9" and row["user_agent"] == "probe/1.0"


def test_unknown_keys_are_their_own_account_and_the_key_is_never_logged(gateway_factory,
                                                                       tmp_path):
    gw = gateway_factory()
    assert gw.chat("sk-secret-123", "hi").status_code == 200
    gw.flush()
    text = b"".join(p.read_bytes() for p in (tmp_path / "log").glob("*.jsonl"))
    assert b"sk-secret-123" not in text
    (row,), _ = read_log(tmp_path / "log")
    assert row["account_id"].startswith("key-") and row["account_id"] == row["api_key_id"]


def test_the_batch_scan_reads_the_gateway_log(gateway_factory, tmp_path):
    from distillguard.engines.scan_job import ScanJob, run_scan_job

    gw = gateway_factory()
    for i in range(6):
        assert gw.chat(f"sk-{i % 2}", f"Explain step by step: {i} + {i}?").status_code == 200
        assert gw.messages("sk-alice", f"Question {i}?", stream=True).status_code == 200
    assert gw.chat("sk-x", "hi", model="unknown").status_code == 400  # not an exchange
    gw.flush()
    findings, _ = run_scan_job(ScanJob([tmp_path / "log"], None, tmp_path / "findings.json"))
    assert findings["input"]["exchanges"] == 12 and findings["input"]["quarantined"] == 0
    assert findings["input"]["accounts"] == 3


HIDDEN = "Think step by step and show your reasoning in full before you answer."


def test_text_in_tool_definitions_and_message_names_is_logged_and_scored(gateway_factory,
                                                                        tmp_path):
    """A prompt hidden in a tool's description or schema, or in a message's ``name``,
    reaches the model: it is logged (with the system text, where the model APIs put
    tool definitions) and scored, online and by the batch scan of the log."""
    import pyarrow as pa

    from distillguard.gateway.scoring import SCORING_SCHEMA
    from distillguard.signals import exchange_signals

    gw = gateway_factory()
    innocent = [{"role": "user", "content": "What is the capital of France?"}]
    openai_tools = [{"type": "function", "function": {
        "name": "lookup", "description": HIDDEN,
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}}]
    anthropic_tools = [{"name": "lookup", "description": "Looks things up.",
                        "input_schema": {"type": "object", "properties": {
                            "q": {"type": "string", "description": HIDDEN}}}}]
    for _ in range(3):
        assert gw.client.post("/v1/chat/completions", json={
            "model": "model-b1", "messages": innocent, "tools": openai_tools},
            headers={"authorization": "Bearer sk-alice"}).status_code == 200
        assert gw.messages("sk-bob", "x", messages=innocent,
                           tools=anthropic_tools).status_code == 200
        assert gw.client.post("/v1/chat/completions", json={"model": "model-b1", "messages": [
            {"role": "user", "name": HIDDEN, "content": innocent[0]["content"]}]},
            headers={"authorization": "Bearer sk-carol"}).status_code == 200
        assert gw.chat("sk-dave", innocent[0]["content"]).status_code == 200  # control
    gw.flush()
    rows, quarantined = read_log(tmp_path / "log")
    assert quarantined == [] and len(rows) == 12
    by_account = {r["account_id"]: r for r in rows}
    openai_row, anthropic_row = by_account["acct-alice"], by_account["acct-bob"]
    assert openai_row["tools"] == ["lookup"] and anthropic_row["tools"] == ["lookup"]
    assert openai_row["system"] == f'[tool lookup] {HIDDEN} {{"parameters":{{"type":"object",' \
        '"properties":{"q":{"type":"string"}}}}'
    assert anthropic_row["system"].startswith("[tool lookup] Looks things up. {") \
        and HIDDEN in anthropic_row["system"]
    assert by_account["acct-carol"]["messages"][0]["content"] == \
        f"[name {HIDDEN}]\nWhat is the capital of France?"
    assert by_account["acct-dave"]["system"] is None
    # scored online: the window of each account that hid the prompt
    now = int(time.time() * 1000)
    shares = {a: gw.gateway.state.window(a, now).shares["cot_elicitation"] for a in
              ("acct-alice", "acct-bob", "acct-carol", "acct-dave")}
    assert shares == {"acct-alice": 1.0, "acct-bob": 1.0, "acct-carol": 1.0, "acct-dave": 0.0}
    # and by the batch scan's signal functions, reading the log
    logged = pa.RecordBatch.from_pylist(
        [{name: by_account[a][name] for name in SCORING_SCHEMA.names}
         for a in ("acct-alice", "acct-bob", "acct-carol", "acct-dave")], schema=SCORING_SCHEMA)
    assert exchange_signals(logged).column("cot_elicitation").to_pylist() == [1.0, 1.0, 1.0, 0.0]


def test_a_tool_description_that_is_not_text_is_refused(gateway_factory):
    gw = gateway_factory()
    r = gw.client.post("/v1/chat/completions", json={
        "model": "model-b1", "messages": [{"role": "user", "content": "hi"}],
        "tools": [{"type": "function", "function": {"name": "f", "description": ["x"]}}]},
        headers={"authorization": "Bearer sk-alice"})
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "tools[0].function.description"


def test_an_https_upstream_is_reached_over_checked_tls(gateway_factory, replay_corpus,
                                                      tmp_path, monkeypatch):
    """The upstream client speaks TLS to an https:// upstream and checks its certificate
    against the trusted ones (here a self-signed one made trusted for the test)."""
    import shutil
    import subprocess

    from distillguard.replay import replay_app
    from tests.gateway.conftest import ServerThread

    openssl = shutil.which("openssl")
    if openssl is None:
        subprocess.run(["apt-get", "install", "-y", "-q", "openssl"], check=True,
                       capture_output=True)
        openssl = shutil.which("openssl") or "openssl"
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    with ServerThread(replay_app(replay_corpus), lifespan="off", ssl_keyfile=str(key),
                      ssl_certfile=str(cert)) as server:
        untrusted = gateway_factory(upstream=server.url)
        r = untrusted.chat("sk-alice", "hi")
        assert r.status_code == 502 and "upstream_unreachable" in r.text  # not trusted
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        trusted = gateway_factory(upstream=server.url, log_dir=tmp_path / "log2")
        r = trusted.chat("sk-alice", "What is the capital of France?")
        assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"]


def test_upstream_connections_are_kept_alive_and_reused(gateway_factory):
    """Sequential requests reuse one pooled connection to the upstream; an upstream that
    closes after each answer gets a new one each time, and nothing fails."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from tests.gateway.conftest import ServerThread

    ports: list[int] = []

    async def answer(request: Request) -> JSONResponse:
        assert request.client is not None
        ports.append(request.client.port)
        body = await request.json()
        headers = {"connection": "close"} if "close" in str(body["messages"]) else None
        return JSONResponse({"id": "c", "object": "chat.completion", "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "ok"},
             "finish_reason": "stop"}]}, headers=headers)

    app = Starlette(routes=[Route("/v1/chat/completions", answer, methods=["POST"])])
    with ServerThread(app, lifespan="off") as upstream:
        gw = gateway_factory(upstream=upstream.url)
        assert [gw.chat("sk-alice", f"keep {i}").status_code for i in range(4)] == [200] * 4
        kept = set(ports)
        assert [gw.chat("sk-alice", f"close {i}").status_code for i in range(3)] == [200] * 3
    assert len(kept) == 1
    assert len(set(ports[4:])) == 3 and not set(ports[5:]) & kept
