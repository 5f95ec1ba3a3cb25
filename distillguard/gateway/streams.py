"""Watch a streamed (server-sent events) response go by; withhold reasoning from it.

``feed`` takes the upstream's bytes as they come and returns the bytes to send
on: the same bytes, event by whole event, when nothing is withheld (events are
parsed to check them and to log the answer, the reasoning and usage), or
re-written events when reasoning is withheld: reasoning deltas are held back and
one summary is sent in their place when the reasoning ends.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from distillguard.gateway.openai_format import REASONING_KEYS

__all__ = ["AnthropicStream", "OpenAIStream", "StreamWatcher", "stream_watcher"]

Summary = Callable[[str], str]


class StreamWatcher:
    """Split server-sent events, check each, and let subclasses read (and rewrite) them.

    Only whole events are passed on: a partial one waits for its end. An event
    that is not server-sent events of JSON (a line that is no SSE field, data
    that is not a JSON object or ``[DONE]``) stops the watcher: ``failure`` says
    why, and nothing from that event on is passed on.
    """

    def __init__(self, summary: Summary | None) -> None:
        self.summary = summary
        self.response: list[str] = []
        self.reasoning: list[str] = []
        self.input_tokens: int | None = None
        self.output_tokens: int | None = None
        self.withheld_chars = 0
        self.failure: str | None = None
        self.upstream_error: str | None = None  # an error event the upstream sent
        self._buffer = b""

    def feed(self, chunk: bytes) -> bytes:
        """The bytes to send on for ``chunk``: its whole, valid events (rewritten when
        withholding); the rest of the stream is held until its events end."""
        if self.failure is not None:
            return b""
        self._buffer += chunk.replace(b"\r\n", b"\n") if b"\r" in chunk else chunk
        end = self._buffer.rfind(b"\n\n")
        if end < 0:
            return b""
        whole, self._buffer = self._buffer[:end + 2], self._buffer[end + 2:]
        return self._events(whole.split(b"\n\n")[:-1], whole)

    def _events(self, events: list[bytes], whole: bytes) -> bytes:
        out: list[bytes] = []
        sent = 0  # bytes of ``whole`` passed unchanged before a failure
        for raw in events:
            rewritten = self._event(raw)
            if self.failure is not None:
                return b"".join(out) if self.summary is not None else whole[:sent]
            sent += len(raw) + 2
            if self.summary is not None:
                out.extend(rewritten)
        return whole if self.summary is None else b"".join(out)

    def finish(self) -> bytes:
        """The stream ended: what is still held, if it is a valid (unterminated) event."""
        rest, self._buffer = self._buffer, b""
        if self.failure is not None or not rest.strip():
            return b""
        return self._events([rest.rstrip(b"\n")], rest)

    def _event(self, raw: bytes) -> list[bytes]:
        name, data = None, []
        for line in raw.split(b"\n"):
            if not line or line[:1] == b":":
                continue  # a blank line or a comment (keep-alive)
            field, _, value = line.partition(b":")
            if field == b"data":
                data.append(value)
            elif field == b"event":
                name = value.strip().decode("utf-8", "replace")
            elif field not in (b"id", b"retry"):
                self.failure = f"not a server-sent event line: {line[:80]!r}"
                return []
        if not data:
            return [raw + b"\n\n"]
        text = b"\n".join(data).strip()
        if text == b"[DONE]":
            return [raw + b"\n\n"]
        try:
            payload = orjson.loads(text)
        except orjson.JSONDecodeError:
            payload = None
        if not isinstance(payload, dict):
            self.failure = f"an event's data is not a JSON object: {text[:80]!r}"
            return []
        error = payload.get("error")
        if error is not None:
            message = error.get("message") if isinstance(error, dict) else error
            self.upstream_error = str(message)[:300]
        return self.on_event(name, payload, raw)

    def on_event(self, name: str | None, payload: dict[str, Any], raw: bytes) -> list[bytes]:
        raise NotImplementedError

    @property
    def fields(self) -> dict[str, Any]:
        """The log's response, reasoning and token fields, as sent to the client."""
        return {"response": "".join(self.response),
                "reasoning": "".join(self.reasoning) if self.reasoning else None,
                "input_tokens": self.input_tokens, "output_tokens": self.output_tokens}


def _sse(payload: dict[str, Any], name: str | None = None) -> bytes:
    head = f"event: {name}\n".encode() if name else b""
    return head + b"data: " + orjson.dumps(payload) + b"\n\n"


class OpenAIStream(StreamWatcher):
    """Chat Completions chunks: ``choices[].delta.content`` and reasoning deltas."""

    def __init__(self, summary: Summary | None) -> None:
        super().__init__(summary)
        self._held: list[str] = []

    def on_event(self, name: str | None, payload: dict[str, Any], raw: bytes) -> list[bytes]:
        usage = payload.get("usage")
        if isinstance(usage, dict):
            self.input_tokens = usage.get("prompt_tokens", self.input_tokens)
            self.output_tokens = usage.get("completion_tokens", self.output_tokens)
        choices = payload.get("choices") or []
        delta = choices[0].get("delta") if choices and isinstance(choices[0], dict) else None
        if not isinstance(delta, dict):
            return [raw + b"\n\n"]
        reasoning_key = next((k for k in REASONING_KEYS if isinstance(delta.get(k), str)), None)
        if self.summary is None:
            if reasoning_key:
                self.reasoning.append(delta[reasoning_key])
            if isinstance(delta.get("content"), str):
                self.response.append(delta["content"])
            return []
        out = []
        if reasoning_key:
            self._held.append(delta.pop(reasoning_key))
            if not any(v for v in delta.values()) and not choices[0].get("finish_reason"):
                return []
        if self._held and (delta.get("content") or choices[0].get("finish_reason")
                           or delta.get("tool_calls")):
            out.append(self._summary_chunk(payload))
        if isinstance(delta.get("content"), str):
            self.response.append(delta["content"])
        out.append(_sse(payload))
        return out

    def _summary_chunk(self, like: dict[str, Any]) -> bytes:
        text = "".join(self._held)
        self._held = []
        self.withheld_chars += len(text)
        assert self.summary is not None
        summary = self.summary(text)
        self.reasoning.append(summary)
        chunk = {k: v for k, v in like.items() if k not in ("choices", "usage")}
        chunk["choices"] = [{"index": 0, "delta": {"reasoning_content": summary},
                             "finish_reason": None}]
        return _sse(chunk)

    def finish(self) -> bytes:
        rest = super().finish()
        if self.summary is not None and self._held:
            return self._summary_chunk({"object": "chat.completion.chunk"}) + rest
        return rest


class AnthropicStream(StreamWatcher):
    """Messages events: ``text_delta``, ``thinking_delta``, usage in start and delta."""

    def __init__(self, summary: Summary | None) -> None:
        super().__init__(summary)
        self._thinking: dict[int, list[str]] = {}
        self._signatures: dict[int, list[bytes]] = {}

    def on_event(self, name: str | None, payload: dict[str, Any], raw: bytes) -> list[bytes]:
        kind = payload.get("type")
        if kind == "message_start":
            usage = (payload.get("message") or {}).get("usage") or {}
            self.input_tokens = usage.get("input_tokens", self.input_tokens)
        elif kind == "message_delta":
            usage = payload.get("usage") or {}
            self.output_tokens = usage.get("output_tokens", self.output_tokens)
        elif kind == "content_block_start":
            block = payload.get("content_block") or {}
            if block.get("type") == "thinking":
                self._thinking[payload.get("index", 0)] = []
        elif kind == "content_block_delta":
            return self._delta(payload, raw)
        elif kind == "content_block_stop":
            return self._stop(payload, raw)
        return [] if self.summary is None else [raw + b"\n\n"]

    def _delta(self, payload: dict[str, Any], raw: bytes) -> list[bytes]:
        delta = payload.get("delta") or {}
        index = payload.get("index", 0)
        if delta.get("type") == "text_delta":
            self.response.append(str(delta.get("text", "")))
        elif delta.get("type") == "thinking_delta":
            text = str(delta.get("thinking", ""))
            if self.summary is None:
                self.reasoning.append(text)
            else:
                self._thinking.setdefault(index, []).append(text)
                return []
        elif delta.get("type") == "signature_delta" and self.summary is not None:
            self._signatures.setdefault(index, []).append(raw + b"\n\n")
            return []
        return [] if self.summary is None else [raw + b"\n\n"]

    def _stop(self, payload: dict[str, Any], raw: bytes) -> list[bytes]:
        if self.summary is None:
            return []
        index = payload.get("index", 0)
        out = []
        held = self._thinking.pop(index, None)
        if held is not None:
            text = "".join(held)
            self.withheld_chars += len(text)
            summary = self.summary(text)
            self.reasoning.append(summary)
            out.append(_sse({"type": "content_block_delta", "index": index,
                             "delta": {"type": "thinking_delta", "thinking": summary}},
                            "content_block_delta"))
        out.extend(self._signatures.pop(index, []))
        out.append(raw + b"\n\n")
        return out


def stream_watcher(api: str, summary: Summary | None) -> StreamWatcher:
    """The watcher for ``api``'s stream; ``summary`` set to withhold reasoning."""
    return AnthropicStream(summary) if api == "anthropic" else OpenAIStream(summary)
