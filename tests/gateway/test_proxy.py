"""Both APIs through the gateway to the replay upstream, and what the log keeps of them."""

from __future__ import annotations

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
