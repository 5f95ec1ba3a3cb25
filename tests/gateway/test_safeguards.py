"""Output safeguards through the real gateway and the replay upstream: nothing for accounts
without a verdict; for accounts under review the watermark request header, the extractive
reasoning summary, the signature phrase (streamed and not, both APIs); for a campaign
watched under `extraction` the decoy tool, dropped reasoning and answer-only mode; what was
applied in the log; shadow mode; no secrets."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from distillguard.errors import RuleValidationError
from distillguard.gateway import Gateway
from distillguard.replay import ReplayCorpus, replay_app
from distillguard.safeguards import (
    WATERMARK_HEADER,
    answer_only,
    append_signature,
    canary_for,
    derive_key,
    load_safeguard_policy,
    parse_watermark_header,
    summarize_reasoning,
)
from tests.gateway.conftest import ServerThread, gateway_config, read_log

WM_SECRET, CANARY_SECRET = "test-watermark-secret", "test-canary-secret"
WORKED = "How many integers are in the solution of the inequality |x + 5| < 10"
TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather.",
                                           "parameters": {"type": "object", "properties": {}}}}]
ANTHROPIC_TOOLS = [{"name": "get_weather", "description": "Weather.",
                    "input_schema": {"type": "object", "properties": {}}}]
# The packaged rules, except that `extraction` accounts are let through under watch (the
# provider who keeps a campaign running to trace it), so their safeguards can be seen.
RULES = [{"name": "watch-extraction", "action": "allow", "when": {"verdict": ["extraction"]}},
         {"name": "watchlist-review", "action": "withhold_reasoning",
          "when": {"verdict": ["review"]}}]


class RecordingUpstream:
    """The replay upstream, recording each request's headers and body as it arrived."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.requests: list[tuple[dict[str, str], dict[str, Any]]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunks, more = [], True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        self.requests.append((headers, orjson.loads(body) if body else {}))
        replayed = False

        async def again() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.sleep(3600)
            return {"type": "http.disconnect"}
        await self.app(scope, again, send)


@pytest.fixture
def upstream(replay_corpus: ReplayCorpus) -> Iterator[tuple[ServerThread, RecordingUpstream]]:
    recording = RecordingUpstream(replay_app(replay_corpus))
    with ServerThread(recording, lifespan="off") as server:
        yield server, recording


def _findings(path: Path) -> Path:
    path.write_bytes(orjson.dumps({"format": "distillguard-findings/1", "generated_at": "x",
                                   "accounts": [
                                       {"account_id": "acct-carol", "verdict": "review",
                                        "score": 0.6, "campaign_id": "C7", "reasons": []},
                                       {"account_id": "acct-bob", "verdict": "extraction",
                                        "score": 0.9, "campaign_id": None, "reasons": []}],
                                   "campaigns": []}))
    return path


def _policy(tmp_path: Path, *, review_share: float = 1.0, extraction_share: float = 0.0) -> Any:
    """The packaged safeguards with the signature's shares set (1: every answer, 0: none),
    so which answers carry the phrase is known."""
    text = resources.files("distillguard.safeguards").joinpath("data/safeguards.yaml").read_text()
    text = text.replace("signature_share: 0.05", f"signature_share: {review_share}")
    text = text.replace("signature_share: 0.2", f"signature_share: {extraction_share}")
    path = tmp_path / "safeguards.yaml"
    path.write_text(text)
    return load_safeguard_policy(path)


@pytest.fixture
def guarded(gateway_factory, upstream, tmp_path):
    """A gateway with both secrets in front of the recording upstream."""
    def make(*, policy: Any = None, secrets: bool = True, **config: Any) -> Any:
        server, recording = upstream
        gw = gateway_factory(gateway_config(**{"rules": RULES, **config}), upstream=server.url,
                             findings=_findings(tmp_path / "findings.json"),
                             safeguards=policy or _policy(tmp_path),
                             watermark_secret=WM_SECRET if secrets else None,
                             canary_secret=CANARY_SECRET if secrets else None)
        return gw, recording
    return make


def _direct(replay, path: str, body: dict[str, Any]) -> dict[str, Any]:
    return httpx.post(replay.url + path, json=body).json()


def _sse(text: str) -> list[dict[str, Any]]:
    return [orjson.loads(line[5:]) for line in text.splitlines()
            if line.startswith("data:") and line[5:].strip() != "[DONE]"]


def _extras(tmp_path: Path, account: str) -> list[dict[str, Any]]:
    rows, quarantined = read_log(tmp_path / "log")
    assert quarantined == []
    return [orjson.loads(r["extra"]) | {"response": r.get("response"), "tools": r.get("tools")}
            for r in rows if r["account_id"] == account]


def test_accounts_without_a_verdict_get_nothing(guarded, replay, tmp_path):
    gw, recording = guarded()
    body = {"model": "model-b1", "reasoning_effort": "high", "tools": TOOLS,
            "messages": [{"role": "user", "content": WORKED}]}
    direct = _direct(replay, "/v1/chat/completions", body)
    r = gw.client.post("/v1/chat/completions", json=body,
                       headers={"authorization": "Bearer sk-alice",
                                WATERMARK_HEADER: "key=chosen-by-client"})
    assert r.json()["choices"] == direct["choices"]
    stream = _sse(gw.chat("sk-alice", WORKED, stream=True).text)
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in stream
                   if c.get("choices")) == direct["choices"][0]["message"]["content"]
    assert gw.messages("sk-alice", WORKED).json()["content"][0]["text"] == \
        direct["choices"][0]["message"]["content"]
    # the client's own watermark header never reaches the upstream; the tools are its own
    assert all(WATERMARK_HEADER not in headers for headers, _ in recording.requests)
    assert recording.requests[0][1]["tools"] == TOOLS
    assert gw.gateway.safeguards._plans == {}  # no plan was even looked up
    gw.flush()
    assert all("safeguards" not in e for e in _extras(tmp_path, "acct-alice"))


def test_review_account_openai(guarded, replay, tmp_path):
    gw, recording = guarded()
    body = {"model": "model-b1", "reasoning_effort": "high",
            "messages": [{"role": "user", "content": WORKED}]}
    direct = _direct(replay, "/v1/chat/completions", body)["choices"][0]["message"]
    canary = canary_for(CANARY_SECRET, "C7")
    summary = summarize_reasoning(direct["reasoning_content"], load_safeguard_policy().summary)
    message = gw.chat("sk-carol", WORKED, reasoning_effort="high").json()["choices"][0]["message"]
    assert message["content"] == append_signature(direct["content"], canary)
    assert message["content"].endswith("\n\n" + canary.phrase)
    assert message["reasoning_content"] == summary
    headers, sent = recording.requests[-1]
    key, params = parse_watermark_header(headers[WATERMARK_HEADER])
    assert key == derive_key(WM_SECRET, "C7") and params == load_safeguard_policy().watermark
    assert "tools" not in sent  # no decoy for `review`

    chunks = _sse(gw.chat("sk-carol", WORKED, reasoning_effort="high", stream=True).text)
    deltas = [(c["choices"][0]["delta"], c["choices"][0]["finish_reason"]) for c in chunks
              if c.get("choices")]
    assert [d["reasoning_content"] for d, _ in deltas if "reasoning_content" in d] == [summary]
    content = [d["content"] for d, _ in deltas if d.get("content")]
    assert "".join(content) == direct["content"] + "\n\n" + canary.phrase
    assert content[-1] == "\n\n" + canary.phrase and deltas[-1][1] == "stop"
    gw.flush()
    records = _extras(tmp_path, "acct-carol")
    assert len(records) == 2
    for record in records:
        assert record["safeguards"]["group"] == "C7"
        assert set(record["safeguards"]["applied"]) == {"watermark_requested", "signature",
                                                        "reasoning_summary"}
        assert record["response"].endswith(canary.phrase)
    assert 'distillguard_gateway_safeguards_applied_total{api="openai",safeguard="signature"} ' \
        '2.0' in gw.metrics()


def test_review_account_anthropic(guarded, replay, tmp_path):
    gw, recording = guarded()
    thinking = {"type": "enabled", "budget_tokens": 1000}
    direct = _direct(replay, "/v1/messages", {"model": "model-b1", "max_tokens": 50,
                                              "thinking": thinking,
                                              "messages": [{"role": "user", "content": WORKED}]})
    canary = canary_for(CANARY_SECRET, "C7")
    text = direct["content"][1]["text"]
    body = gw.messages("sk-carol", WORKED, thinking=thinking).json()
    assert body["content"][1]["text"] == append_signature(text, canary)
    assert body["content"][0]["thinking"] == summarize_reasoning(
        direct["content"][0]["thinking"], load_safeguard_policy().summary)
    assert WATERMARK_HEADER in recording.requests[-1][0]

    events = _sse(gw.messages("sk-carol", WORKED, thinking=thinking, stream=True).text)
    kinds = [e["type"] for e in events]
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
    texts = [e["delta"]["text"] for e in events if e["type"] == "content_block_delta"
             and e["delta"]["type"] == "text_delta"]
    assert "".join(texts) == text + "\n\n" + canary.phrase
    last_delta = max(i for i, e in enumerate(events) if e["type"] == "content_block_delta")
    assert events[last_delta]["delta"]["text"] == "\n\n" + canary.phrase
    assert events[last_delta + 1] == {"type": "content_block_stop", "index": 1}
    gw.flush()
    assert all("signature" in e["safeguards"]["applied"] for e in _extras(tmp_path, "acct-carol"))


def test_watched_extraction_campaign(guarded, replay, tmp_path):
    gw, recording = guarded()
    body = {"model": "model-b1", "reasoning_effort": "high", "tools": TOOLS,
            "messages": [{"role": "user", "content": WORKED}]}
    direct = _direct(replay, "/v1/chat/completions", body)["choices"][0]["message"]
    cut = answer_only(direct["content"])
    assert cut != direct["content"] and cut.startswith("There are 19 integers")
    canary = canary_for(CANARY_SECRET, "acct-bob")  # in no campaign: its own group
    r = gw.client.post("/v1/chat/completions", json=body,
                       headers={"authorization": "Bearer sk-bob"})
    message = r.json()["choices"][0]["message"]
    assert message["content"] == cut and message["reasoning_content"] == ""
    sent = recording.requests[-1][1]
    assert [t["function"]["name"] for t in sent["tools"]] == ["get_weather", canary.tool_name]
    assert derive_key(WM_SECRET, "acct-bob") in recording.requests[-1][0][WATERMARK_HEADER]

    stream = _sse(gw.client.post("/v1/chat/completions", json={**body, "stream": True},
                                 headers={"authorization": "Bearer sk-bob"}).text)
    deltas = [c["choices"][0]["delta"] for c in stream if c.get("choices")]
    assert "".join(d.get("content") or "" for d in deltas) == cut
    assert not any(d.get("reasoning_content") for d in deltas)

    # Anthropic: the decoy in its shape; a request without tools gets none
    anthropic = gw.messages("sk-bob", WORKED, tools=ANTHROPIC_TOOLS,
                            thinking={"type": "enabled", "budget_tokens": 1000}).json()
    assert anthropic["content"][1]["text"] == cut and anthropic["content"][0]["thinking"] == ""
    assert [t["name"] for t in recording.requests[-1][1]["tools"]] == ["get_weather",
                                                                        canary.tool_name]
    gw.messages("sk-bob", WORKED)
    assert "tools" not in recording.requests[-1][1]
    events = _sse(gw.messages("sk-bob", WORKED, stream=True).text)
    assert "".join(e["delta"]["text"] for e in events if e["type"] == "content_block_delta"
                   ) == cut
    gw.flush()
    records = _extras(tmp_path, "acct-bob")
    assert [sorted(e["safeguards"]["applied"]) for e in records[:3]] == [
        ["answer_only", "decoy_tool", "reasoning_drop", "watermark_requested"]] * 3
    assert "decoy_tool" not in records[3]["safeguards"]["applied"]
    assert records[0]["tools"] == ["get_weather"]  # the log keeps what the client sent
    assert records[0]["response"] == cut


def test_shadow_mode_plans_and_logs_without_applying(guarded, replay, tmp_path):
    gw, recording = guarded(safeguards={"mode": "shadow"}, rules=[])
    body = {"model": "model-b1", "reasoning_effort": "high", "tools": TOOLS,
            "messages": [{"role": "user", "content": WORKED}]}
    direct = _direct(replay, "/v1/chat/completions", body)
    for key in ("sk-carol", "sk-bob"):
        r = gw.client.post("/v1/chat/completions", json=body,
                           headers={"authorization": f"Bearer {key}"})
        assert r.json()["choices"] == direct["choices"]
    assert all(WATERMARK_HEADER not in h and sent["tools"] == TOOLS
               for h, sent in recording.requests[-2:])
    gw.flush()
    carol, bob = _extras(tmp_path, "acct-carol")[0], _extras(tmp_path, "acct-bob")[0]
    assert carol["safeguards"] == {"group": "C7", "shadow": True, "applied": [
        "watermark_requested", "reasoning_summary", "signature"]}
    assert bob["safeguards"]["shadow"] and "decoy_tool" in bob["safeguards"]["applied"]


def test_without_secrets_only_the_keyless_safeguards_apply(guarded, replay, tmp_path):
    gw, recording = guarded(secrets=False)
    body = {"model": "model-b1", "reasoning_effort": "high",
            "messages": [{"role": "user", "content": WORKED}]}
    direct = _direct(replay, "/v1/chat/completions", body)["choices"][0]["message"]
    message = gw.chat("sk-carol", WORKED, reasoning_effort="high").json()["choices"][0]["message"]
    assert message["content"] == direct["content"]  # no canary without its secret
    assert message["reasoning_content"].startswith("Reasoning summary: ")
    assert WATERMARK_HEADER not in recording.requests[-1][0]
    gw.flush()
    assert _extras(tmp_path, "acct-carol")[0]["safeguards"] == {
        "group": "C7", "applied": ["reasoning_summary"]}


def test_a_bad_safeguards_file_fails_at_startup(tmp_path):
    bad = tmp_path / "safeguards.yaml"
    bad.write_text("version: 1\nverdicts: {review: {signature_share: 3}}\n")
    with pytest.raises(RuleValidationError, match="signature_share"):
        Gateway(gateway_config(safeguards={"path": str(bad)}), upstream_url="http://127.0.0.1:9",
                log_dir=None)
    with pytest.raises(RuleValidationError, match="cannot read safeguards file"):
        Gateway(gateway_config(safeguards={"path": str(tmp_path / "missing.yaml")}),
                upstream_url="http://127.0.0.1:9", log_dir=None)
    with pytest.raises(RuleValidationError, match="mode"):
        gateway_config(safeguards={"mode": "sometimes"})
