"""Policy actions end to end: watchlist reloads, block, verification, throttle, withheld
reasoning, shadow, and a rule fed by online scoring."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import orjson
import pytest

from distillguard.gateway.service import SETTLE_SECONDS
from distillguard.safeguards import load_safeguard_policy, summarize_reasoning
from tests.gateway.conftest import gateway_config, read_log

COT = "Think step by step and write out your full reasoning before answering: what is 17 * 23?"


def _findings(path: Path, accounts: dict[str, str], *, bump: float = 0.0) -> None:
    path.write_bytes(orjson.dumps({"format": "distillguard-findings/1", "generated_at": "x",
                                   "accounts": [{"account_id": a, "verdict": v, "score": 0.9,
                                                 "campaign_id": "C1", "reasons": []}
                                                for a, v in accounts.items()],
                                   "campaigns": []}))
    if bump:
        st = path.stat()
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + int(bump * 1e9)))


def _wait_for(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


def test_watchlist_block_takes_effect_without_restart(gateway_factory, tmp_path):
    findings = tmp_path / "findings.json"
    _findings(findings, {})
    gw = gateway_factory(gateway_config(watchlist={"poll_seconds": 0.02}), findings=findings)
    assert gw.chat("sk-alice", "hi").status_code == 200
    _findings(findings, {"acct-alice": "extraction"}, bump=1)
    _wait_for(lambda: gw.gateway.watchlist.get("acct-alice") is not None)
    r = gw.chat("sk-alice", "hi")
    assert r.status_code == 403 and r.json()["error"]["code"] == "account_blocked"
    r = gw.messages("sk-alice", "hi")
    assert r.status_code == 403 and r.json()["error"]["type"] == "permission_error"
    assert gw.chat("sk-bob", "hi").status_code == 200  # others unaffected
    gw.flush()
    rows, quarantined = read_log(tmp_path / "log")
    assert quarantined == [] and sorted(r["status"] for r in rows) == [200, 200, 403, 403]
    blocked = [orjson.loads(r["extra"]) for r in rows if r["status"] == 403]
    assert all(e["gateway_action"] == "block" and e["watchlist_verdict"] == "extraction"
               for e in blocked)


def test_require_verification_tells_how_to_verify(gateway_factory):
    config = gateway_config(rules=[{"name": "unverified", "action": "require_verification",
                                    "when": {"verified": False, "tiers": ["free"]}}],
                            verification_url="https://api.example/verify")
    gw = gateway_factory(config)
    error = gw.chat("sk-bob", "hi").json()["error"]
    assert error["code"] == "verification_required"
    assert "https://api.example/verify" in error["message"] and "acct-bob" in error["message"]
    assert gw.messages("sk-bob", "hi").json()["error"]["type"] == "permission_error"
    assert gw.chat("sk-alice", "hi").status_code == 200  # verified pro account


def test_throttle_limits_requests_per_account(gateway_factory):
    config = gateway_config(
        rules=[{"name": "slow-bob", "action": "throttle", "when": {"tiers": ["free"]}}],
        throttle={"account": {"requests_per_minute": 60, "burst_seconds": 2}, "org": None})
    gw = gateway_factory(config)
    codes = [gw.chat("sk-bob", f"q{i}").status_code for i in range(4)]
    assert codes == [200, 200, 429, 429]
    r = gw.messages("sk-bob", "again")
    assert r.status_code == 429 and r.json()["error"]["type"] == "rate_limit_error"
    assert int(r.headers["retry-after"]) >= 1
    assert [gw.chat("sk-alice", f"q{i}").status_code for i in range(4)] == [200] * 4


def test_org_limit_is_shared_by_the_orgs_accounts(gateway_factory):
    gw = gateway_factory(gateway_config(limits={"org": {"requests_per_minute": 60,
                                                        "burst_seconds": 3}}))
    codes = [gw.chat(key, "hi").status_code for key in ("sk-alice", "sk-dave", "sk-alice",
                                                        "sk-dave")]
    assert codes == [200, 200, 200, 429]
    assert gw.chat("sk-bob", "hi").status_code == 200  # another org


def test_token_limit_counts_what_the_upstream_reported(gateway_factory):
    gw = gateway_factory(gateway_config(limits={"account": {"tokens_per_minute": 600,
                                                            "burst_seconds": 60}}))
    first = gw.chat("sk-alice", "Why is Citizen Kane considered the Best Film?")
    assert first.status_code == 200 and first.json()["usage"]["completion_tokens"] > 600
    time.sleep(SETTLE_SECONDS * 3)  # usage beyond the estimate is charged in batches
    r = gw.chat("sk-alice", "hi")
    assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limit_exceeded"


def _withhold_gateway(gateway_factory):
    return gateway_factory(gateway_config(rules=[{"name": "edu", "action": "withhold_reasoning",
                                                  "when": {"tiers": ["edu"]}}]))


def _sse(text: str) -> list[dict]:
    return [orjson.loads(line[5:]) for line in text.splitlines()
            if line.startswith("data:") and line[5:].strip() != "[DONE]"]


def test_withhold_reasoning_openai(gateway_factory, replay, tmp_path):
    gw = _withhold_gateway(gateway_factory)
    body = {"model": "model-b1", "reasoning_effort": "high",
            "messages": [{"role": "user", "content": COT}]}
    direct = httpx.post(replay.url + "/v1/chat/completions", json=body).json()
    raw = direct["choices"][0]["message"]["reasoning_content"]
    message = gw.chat("sk-carol", COT, reasoning_effort="high").json()["choices"][0]["message"]
    assert message["content"] == direct["choices"][0]["message"]["content"]  # answer untouched
    # the extractive summary of the safeguards file's reasoning_summary settings
    assert message["reasoning_content"] == summarize_reasoning(raw, load_safeguard_policy().summary)
    assert message["reasoning_content"].startswith("Reasoning summary: ")
    assert len(message["reasoning_content"]) < len(raw) / 2 and "withheld" in \
        message["reasoning_content"]
    stream = _sse(gw.chat("sk-carol", COT, reasoning_effort="high", stream=True).text)
    deltas = [c["choices"][0]["delta"] for c in stream if c.get("choices")]
    reasoning = [d["reasoning_content"] for d in deltas if "reasoning_content" in d]
    assert reasoning == [message["reasoning_content"]]  # one summary instead of the trace
    assert "".join(d.get("content") or "" for d in deltas) == message["content"]
    unflagged = gw.chat("sk-alice", COT, reasoning_effort="high").json()
    assert unflagged["choices"][0]["message"]["reasoning_content"] == raw
    gw.flush()
    rows, _ = read_log(tmp_path / "log")
    carol = [r for r in rows if r["account_id"] == "acct-carol"]
    assert all(r["reasoning"].startswith("Reasoning summary") for r in carol)
    assert all(orjson.loads(r["extra"])["reasoning_withheld_chars"] == len(raw) for r in carol)


def test_withhold_reasoning_anthropic(gateway_factory, replay):
    gw = _withhold_gateway(gateway_factory)
    thinking = {"type": "enabled", "budget_tokens": 1000}
    direct = httpx.post(replay.url + "/v1/messages", json={
        "model": "model-b1", "max_tokens": 50, "thinking": thinking,
        "messages": [{"role": "user", "content": COT}]}).json()
    body = gw.messages("sk-carol", COT, thinking=thinking).json()
    assert body["content"][1] == direct["content"][1]  # the text block, untouched
    block = body["content"][0]
    assert block["type"] == "thinking" and block["thinking"] == summarize_reasoning(
        direct["content"][0]["thinking"], load_safeguard_policy().summary)
    assert block["signature"] == direct["content"][0]["signature"]
    events = _sse(gw.messages("sk-carol", COT, thinking=thinking, stream=True).text)
    thinking_deltas = [e["delta"]["thinking"] for e in events
                       if e["type"] == "content_block_delta"
                       and e["delta"]["type"] == "thinking_delta"]
    assert thinking_deltas == [block["thinking"]]
    kinds = [e["type"] for e in events]
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    text = "".join(e["delta"]["text"] for e in events if e["type"] == "content_block_delta"
                   and e["delta"]["type"] == "text_delta")
    assert text == direct["content"][1]["text"]
    assert any(e["type"] == "content_block_delta" and e["delta"]["type"] == "signature_delta"
               for e in events)


def test_shadow_rule_logs_and_counts_but_allows(gateway_factory, tmp_path):
    gw = gateway_factory(gateway_config(rules=[{"name": "try-block", "action": "block",
                                                "shadow": True, "when": {"tiers": ["free"]}}]))
    assert gw.chat("sk-bob", "hi").status_code == 200
    gw.flush()
    (row,), _ = read_log(tmp_path / "log")
    extra = orjson.loads(row["extra"])
    assert (extra["gateway_action"], extra["gateway_rule"], extra["gateway_shadow"]) == (
        "block", "try-block", True)
    metrics = gw.metrics()
    assert ('distillguard_gateway_requests_total{action="block",api="openai",rule="try-block",'
            'shadow="true",verdict=""} 1.0') in metrics


@pytest.mark.parametrize("worker", ["inline", "process"])
def test_online_scoring_feeds_a_window_rule(gateway_factory, worker):
    config = gateway_config(scoring={"worker": worker}, rules=[
        {"name": "cot-harvest", "action": "block",
         "when": {"min_requests": 3, "shares_at_least": {"cot_elicitation": 0.6}}}])
    gw = gateway_factory(config)
    for _ in range(3):
        assert gw.chat("sk-carol", COT).status_code == 200
        assert gw.chat("sk-alice", "What is the capital of Norway?").status_code == 200
    _wait_for(lambda: gw.gateway.scorer.scored >= 6, timeout=20)
    r = gw.chat("sk-carol", COT)
    assert r.status_code == 403 and r.json()["error"]["code"] == "account_blocked"
    assert gw.chat("sk-alice", "And of Sweden?").status_code == 200
