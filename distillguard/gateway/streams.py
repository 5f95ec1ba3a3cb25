"""Watch a streamed (server-sent events) response go by; rewrite it when asked.

``feed`` takes the upstream's bytes as they come and returns the bytes to send
on: the same bytes, event by whole event, when nothing is rewritten (events are
parsed to check them and to log the answer, the reasoning and usage), or
re-written events under a ``Rewrite`` (``gateway.output_safeguards``):

- reasoning withheld: reasoning deltas are held back and one summary is sent in
  their place when the reasoning ends (nothing when it is dropped);
- answer-only mode: the answer's deltas are held and one delta with the cut answer
  is sent when the answer ends (the answer is not streamed: it must be whole to cut);
- signature: one more answer delta, the closing line, just before the answer ends
  (OpenAI: before the chunk with the ``finish_reason``; Anthropic: before the last
  text block's ``content_block_stop``, held until the message says it is the last).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from distillguard.gateway.openai_format import REASONING_KEYS
from distillguard.gateway.output_safeguards import Rewrite
from distillguard.safeguards.canaries import signature_suffix

__all__ = ["AnthropicStream", "OpenAIStream", "StreamWatcher", "stream_watcher"]

Summary = Callable[[str], str]


class StreamWatcher:
    """Split server-sent events, check each, and let subclasses read (and rewrite) them.

    Only whole events are passed on: a partial one waits for its end. An event
    that is not server-sent events of JSON (a line that is no SSE field, data
    that is not a JSON object or ``[DONE]``) stops the watcher: ``failure`` says
    why, and nothing from that event on is passed on; so does an event still unfinished
    past ``max_event_bytes`` (an upstream is not trusted to end its events).
    """

    max_event_bytes = 1 << 25

    def __init__(self, rewrite: Rewrite | None) -> None:
        self.rewrite = rewrite
        self.summary: Summary | None = rewrite.summary if rewrite is not None else None
        self.cut: Summary | None = rewrite.cut if rewrite is not None else None
        self.signature = (signature_suffix(rewrite.signature) if rewrite is not None
                          and rewrite.signature is not None else None)
        self.cut_applied = False
        self.signed = False
        self.response: list[str] = []
        self.reasoning: list[str] = []
        self.input_tokens: int | None = None
        self.output_tokens: int | None = None
        self.withheld_chars = 0
        self.failure: str | None = None
        self.upstream_error: str | None = None  # an error event the upstream sent
        self._buffer = b""  # the unfinished event: ``_pieces`` joined when one ends
        self._pieces: list[bytes] = []
        self._pending = 0  # bytes in ``_buffer`` and ``_pieces``

    def feed(self, chunk: bytes) -> bytes:
        """The bytes to send on for ``chunk``: its whole, valid events (rewritten when
        withholding); the rest of the stream is held until its events end."""
        if self.failure is not None:
            return b""
        if b"\r" in chunk:
            chunk = chunk.replace(b"\r\n", b"\n")
        ends = b"\n\n" in chunk or (chunk[:1] == b"\n" and self._last_byte() == b"\n")
        self._pieces.append(chunk)  # joined only when an event ends: linear in the event
        self._pending += len(chunk)
        if not ends:
            if self._pending > self.max_event_bytes:
                self.failure = f"an event is longer than {self.max_event_bytes} bytes"
                self._buffer, self._pieces = b"", []
            return b""
        buffer = b"".join((self._buffer, *self._pieces))
        self._pieces = []
        end = buffer.rfind(b"\n\n")
        whole, self._buffer = buffer[:end + 2], buffer[end + 2:]
        self._pending = len(self._buffer)
        return self._events(whole.split(b"\n\n")[:-1], whole)

    def _last_byte(self) -> bytes:
        last = self._pieces[-1] if self._pieces else self._buffer
        return last[-1:]

    def _events(self, events: list[bytes], whole: bytes) -> bytes:
        out: list[bytes] = []
        sent = 0  # bytes of ``whole`` passed unchanged before a failure
        for raw in events:
            rewritten = self._event(raw)
            if self.failure is not None:
                return b"".join(out) if self.rewrite is not None else whole[:sent]
            sent += len(raw) + 2
            if self.rewrite is not None:
                out.extend(rewritten)
        return whole if self.rewrite is None else b"".join(out)

    def finish(self) -> bytes:
        """The stream ended: what is still held, if it is a valid (unterminated) event."""
        rest = b"".join((self._buffer, *self._pieces))
        self._buffer, self._pieces, self._pending = b"", [], 0
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

    def _sign(self) -> str | None:
        """The closing line to send now (and logged as sent), once the answer has text;
        None when nothing is to be signed."""
        if self.signature is None or not "".join(self.response).strip():
            return None
        self.response.append(self.signature)
        self.signed = True
        return self.signature

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

    def __init__(self, rewrite: Rewrite | None) -> None:
        super().__init__(rewrite)
        self._held: list[str] = []  # reasoning withheld so far
        self._answer: list[str] = []  # the answer, held to be cut
        self._closed = False  # the answer's end (cut answer, signature) was sent

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
        if self.rewrite is None:
            if reasoning_key:
                self.reasoning.append(delta[reasoning_key])
            if isinstance(delta.get("content"), str):
                self.response.append(delta["content"])
            return []
        finish = choices[0].get("finish_reason")
        out = []
        held_some = False
        if reasoning_key and self.summary is not None:
            self._held.append(delta.pop(reasoning_key))
            held_some = True
        elif reasoning_key:
            self.reasoning.append(delta[reasoning_key])
        if isinstance(delta.get("content"), str) and self.cut is not None:
            self._answer.append(delta.pop("content"))
            held_some = True
        if held_some and not any(v for v in delta.values()) and not finish:
            return []
        if self._held and (delta.get("content") or finish or delta.get("tool_calls")
                           or self._answer):
            out.append(self._summary_chunk(payload))
        if isinstance(delta.get("content"), str):
            self.response.append(delta["content"])
        if finish:
            out += self._close_answer(payload)
        out.append(_sse(payload))
        return out

    def _chunk(self, like: dict[str, Any], delta: dict[str, Any]) -> bytes:
        chunk = {k: v for k, v in like.items() if k not in ("choices", "usage")}
        chunk["choices"] = [{"index": 0, "delta": delta, "finish_reason": None}]
        return _sse(chunk)

    def _summary_chunk(self, like: dict[str, Any]) -> bytes:
        text = "".join(self._held)
        self._held = []
        self.withheld_chars += len(text)
        assert self.summary is not None
        summary = self.summary(text)
        if not summary:
            return b""
        self.reasoning.append(summary)
        return self._chunk(like, {"reasoning_content": summary})

    def _close_answer(self, like: dict[str, Any]) -> list[bytes]:
        """The cut answer and the signature, before the chunk that ends the answer."""
        if self._closed:
            return []
        self._closed = True
        out = []
        if self.cut is not None:
            whole = "".join(self._answer)
            text = self.cut(whole)
            self.cut_applied = text != whole
            if text:
                self.response.append(text)
                out.append(self._chunk(like, {"content": text}))
        signature = self._sign()
        if signature is not None:
            out.append(self._chunk(like, {"content": signature}))
        return out

    def finish(self) -> bytes:
        rest = super().finish()
        if self.rewrite is None:
            return rest
        like = {"object": "chat.completion.chunk"}
        held = self._summary_chunk(like) if self._held else b""
        return held + b"".join(self._close_answer(like)) + rest


class AnthropicStream(StreamWatcher):
    """Messages events: ``text_delta``, ``thinking_delta``, usage in start and delta."""

    def __init__(self, rewrite: Rewrite | None) -> None:
        super().__init__(rewrite)
        self._thinking: dict[int, list[str]] = {}
        self._signatures: dict[int, list[bytes]] = {}
        self._texts: dict[int, list[str]] = {}  # text blocks' deltas, held to be cut
        self._last_stop: tuple[int, bytes] | None = None  # a text block's end, held

    def on_event(self, name: str | None, payload: dict[str, Any], raw: bytes) -> list[bytes]:
        kind = payload.get("type")
        out: list[bytes] = []
        if kind == "message_start":
            usage = (payload.get("message") or {}).get("usage") or {}
            self.input_tokens = usage.get("input_tokens", self.input_tokens)
        elif kind == "message_delta":
            usage = payload.get("usage") or {}
            self.output_tokens = usage.get("output_tokens", self.output_tokens)
            out = self._release_stop(sign=True)
        elif kind == "content_block_start":
            block = payload.get("content_block") or {}
            index = payload.get("index", 0)
            if block.get("type") == "thinking" and self.summary is not None:
                self._thinking[index] = []
            elif block.get("type") == "text":
                self._texts[index] = []
            out = self._release_stop(sign=False)
        elif kind == "content_block_delta":
            return self._delta(payload, raw)
        elif kind == "content_block_stop":
            return self._stop(payload, raw)
        return [] if self.rewrite is None else [*out, raw + b"\n\n"]

    def _delta(self, payload: dict[str, Any], raw: bytes) -> list[bytes]:
        delta = payload.get("delta") or {}
        index = payload.get("index", 0)
        if delta.get("type") == "text_delta":
            text = str(delta.get("text", ""))
            if self.cut is not None and index in self._texts:
                self._texts[index].append(text)
                return []
            self.response.append(text)
        elif delta.get("type") == "thinking_delta":
            text = str(delta.get("thinking", ""))
            if index not in self._thinking:
                self.reasoning.append(text)
            else:
                self._thinking[index].append(text)
                return []
        elif delta.get("type") == "signature_delta" and index in self._thinking:
            self._signatures.setdefault(index, []).append(raw + b"\n\n")
            return []
        return [] if self.rewrite is None else [raw + b"\n\n"]

    def _text_delta(self, index: int, text: str) -> bytes:
        return _sse({"type": "content_block_delta", "index": index,
                     "delta": {"type": "text_delta", "text": text}}, "content_block_delta")

    def _stop(self, payload: dict[str, Any], raw: bytes) -> list[bytes]:
        if self.rewrite is None:
            return []
        index = payload.get("index", 0)
        out = self._release_stop(sign=False)
        held = self._thinking.pop(index, None)
        if held is not None:
            assert self.summary is not None
            text = "".join(held)
            self.withheld_chars += len(text)
            summary = self.summary(text)
            if summary:
                self.reasoning.append(summary)
                out.append(_sse({"type": "content_block_delta", "index": index,
                                 "delta": {"type": "thinking_delta", "thinking": summary}},
                                "content_block_delta"))
        out.extend(self._signatures.pop(index, []))
        texts = self._texts.pop(index, None)
        if texts is not None and self.cut is not None:
            whole = "".join(texts)
            text = self.cut(whole)
            self.cut_applied |= text != whole
            if text:
                self.response.append(text)
                out.append(self._text_delta(index, text))
        if texts is not None and self.signature is not None:
            self._last_stop = (index, raw + b"\n\n")  # sent when the next event says more
            return out
        out.append(raw + b"\n\n")
        return out

    def _release_stop(self, *, sign: bool) -> list[bytes]:
        """The held end of a text block; with ``sign`` (the message is ending, so the block
        was the answer's last) the signature goes in before it."""
        if self._last_stop is None:
            return []
        index, stop = self._last_stop
        self._last_stop = None
        signature = self._sign() if sign else None
        return [stop] if signature is None else [self._text_delta(index, signature), stop]

    def finish(self) -> bytes:
        rest = super().finish()
        return b"".join(self._release_stop(sign=True)) + rest


def stream_watcher(api: str, rewrite: Rewrite | None, max_event_bytes: int = 1 << 25
                   ) -> StreamWatcher:
    """The watcher for ``api``'s stream; ``rewrite`` set to rewrite the answer."""
    watcher = AnthropicStream(rewrite) if api == "anthropic" else OpenAIStream(rewrite)
    watcher.max_event_bytes = max_event_bytes
    return watcher
