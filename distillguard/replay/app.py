"""``distillguard upstream-replay``: a stand-in model API for demos, tests and benchmarks.

Answers ``POST /v1/chat/completions`` (OpenAI) and ``POST /v1/messages``
(Anthropic), streamed or not, with the corpora's reference answers. Reasoning
comes back when the request asks for it (OpenAI ``reasoning_effort``, Anthropic
``thinking: {type: enabled}``) or always with ``reasoning="always"``: as
``reasoning_content`` (OpenAI-compatible servers' convention) or ``thinking``
blocks. A request whose last message contains ``[replay:error]`` is answered 500
``[replay:sleep=S]`` waits S seconds first and ``[replay:event_gap=S]`` S seconds
between streamed events, so failures and slow streams can be tested;
``app.state.open_streams[0]`` counts the streams being sent.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from distillguard.replay.corpus import ReplayCorpus

__all__ = ["replay_app"]

_SLEEP = re.compile(r"\[replay:sleep=([0-9.]+)\]")
_EVENT_GAP = re.compile(r"\[replay:event_gap=([0-9.]+)\]")
_PIECES = 12


def _pieces(text: str, n: int = _PIECES) -> list[str]:
    """``text`` cut into about ``n`` pieces on word boundaries (the stream's deltas)."""
    words = text.split(" ")
    size = max(1, -(-len(words) // n))
    return [" ".join(words[i:i + size]) + (" " if i + size < len(words) else "")
            for i in range(0, len(words), size)]


def _last_text(messages: Any) -> str:
    if not isinstance(messages, list) or not messages or not isinstance(messages[-1], dict):
        return ""
    content = messages[-1].get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def _json(value: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(value), status_code=status, media_type="application/json")


def _sse(payload: Any, event: str | None = None) -> bytes:
    return (f"event: {event}\n".encode() if event else b"") + b"data: " + orjson.dumps(
        payload) + b"\n\n"


def replay_app(corpus: ReplayCorpus, *, reasoning: str = "requested",
               delay_seconds: float = 0.0) -> Starlette:
    """The replay upstream; ``delay_seconds`` of think time before each answer."""

    async def prepare(request: Request) -> tuple[dict[str, Any], str, str | None] | Response:
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return _json({"error": {"message": "invalid JSON", "type": "invalid_request_error"}},
                         400)
        if not isinstance(body, dict):
            return _json({"error": {"message": "expected an object",
                                    "type": "invalid_request_error"}}, 400)
        prompt = _last_text(body.get("messages"))
        if "[replay:error]" in prompt:
            return _json({"error": {"message": "replay upstream error on request",
                                    "type": "server_error"}}, 500)
        if (m := _SLEEP.search(prompt)) is not None:
            await asyncio.sleep(float(m.group(1)))
        if delay_seconds:
            await asyncio.sleep(delay_seconds)
        answer = corpus.answer(prompt)
        thinking = body.get("thinking")
        wants = (reasoning == "always" or "reasoning_effort" in body or (
            isinstance(thinking, dict) and thinking.get("type") == "enabled"))
        return body, answer, corpus.reasoning(prompt, answer) if wants else None

    open_streams = [0]

    async def paced(body: dict[str, Any], events: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """``events``, with the requested gap between them; counts streams still open."""
        m = _EVENT_GAP.search(_last_text(body.get("messages")))
        open_streams[0] += 1
        try:
            async for event in events:
                yield event
                if m is not None:
                    await asyncio.sleep(float(m.group(1)))
        finally:
            open_streams[0] -= 1

    async def chat(request: Request) -> Response:
        prepared = await prepare(request)
        if isinstance(prepared, Response):
            return prepared
        body, answer, thought = prepared
        rid, created, model = f"chatcmpl-{time.time_ns():x}", int(time.time()), body.get("model")
        usage = {"prompt_tokens": len(_last_text(body.get("messages"))) // 4 + 1,
                 "completion_tokens": len(answer) // 4 + 1}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": answer}
            if thought:
                message["reasoning_content"] = thought
            return _json({"id": rid, "object": "chat.completion", "created": created,
                          "model": model, "usage": usage, "choices": [
                              {"index": 0, "message": message, "finish_reason": "stop"}]})

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            return _sse({"id": rid, "object": "chat.completion.chunk", "created": created,
                         "model": model, "choices": [{"index": 0, "delta": delta,
                                                      "finish_reason": finish}]})

        async def events() -> AsyncIterator[bytes]:
            yield chunk({"role": "assistant", "content": ""})
            for piece in _pieces(thought) if thought else []:
                yield chunk({"reasoning_content": piece})
            for piece in _pieces(answer):
                yield chunk({"content": piece})
            yield chunk({}, "stop")
            if (body.get("stream_options") or {}).get("include_usage"):
                yield _sse({"id": rid, "object": "chat.completion.chunk", "created": created,
                            "model": model, "choices": [], "usage": usage})
            yield b"data: [DONE]\n\n"

        return StreamingResponse(paced(body, events()), media_type="text/event-stream")

    async def messages(request: Request) -> Response:
        prepared = await prepare(request)
        if isinstance(prepared, Response):
            return prepared
        body, answer, thought = prepared
        mid, model = f"msg_{time.time_ns():x}", body.get("model")
        usage = {"input_tokens": len(_last_text(body.get("messages"))) // 4 + 1,
                 "output_tokens": len(answer) // 4 + 1}
        signature = f"replay-sig-{len(thought or ''):x}"
        if not body.get("stream"):
            content: list[dict[str, Any]] = []
            if thought:
                content.append({"type": "thinking", "thinking": thought, "signature": signature})
            content.append({"type": "text", "text": answer})
            return _json({"id": mid, "type": "message", "role": "assistant", "model": model,
                          "content": content, "stop_reason": "end_turn", "stop_sequence": None,
                          "usage": usage})

        async def events() -> AsyncIterator[bytes]:
            yield _sse({"type": "message_start", "message": {
                "id": mid, "type": "message", "role": "assistant", "model": model, "content": [],
                "stop_reason": None, "usage": {"input_tokens": usage["input_tokens"],
                                               "output_tokens": 1}}}, "message_start")
            index = 0
            if thought:
                yield _sse({"type": "content_block_start", "index": 0,
                            "content_block": {"type": "thinking", "thinking": ""}},
                           "content_block_start")
                for piece in _pieces(thought):
                    yield _sse({"type": "content_block_delta", "index": 0, "delta": {
                        "type": "thinking_delta", "thinking": piece}}, "content_block_delta")
                yield _sse({"type": "content_block_delta", "index": 0, "delta": {
                    "type": "signature_delta", "signature": signature}}, "content_block_delta")
                yield _sse({"type": "content_block_stop", "index": 0}, "content_block_stop")
                index = 1
            yield _sse({"type": "content_block_start", "index": index,
                        "content_block": {"type": "text", "text": ""}}, "content_block_start")
            for piece in _pieces(answer):
                yield _sse({"type": "content_block_delta", "index": index,
                            "delta": {"type": "text_delta", "text": piece}}, "content_block_delta")
            yield _sse({"type": "content_block_stop", "index": index}, "content_block_stop")
            yield _sse({"type": "message_delta", "delta": {"stop_reason": "end_turn",
                                                           "stop_sequence": None},
                        "usage": {"output_tokens": usage["output_tokens"]}}, "message_delta")
            yield _sse({"type": "message_stop"}, "message_stop")

        return StreamingResponse(paced(body, events()), media_type="text/event-stream")

    async def models(request: Request) -> Response:
        return _json({"object": "list", "data": []})

    app = Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"]),
                            Route("/v1/messages", messages, methods=["POST"]),
                            Route("/v1/models", models, methods=["GET"])])
    app.state.open_streams = open_streams
    return app
