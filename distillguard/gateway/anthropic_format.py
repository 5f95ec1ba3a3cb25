"""Anthropic Messages: read a request, read a response, withhold reasoning.

Reasoning comes back as ``thinking`` content blocks (``thinking_delta`` events
when streamed). Tool results travel in ``user`` turns; a turn made only of
tool results is logged with role ``tool``.
"""

from __future__ import annotations

from typing import Any

import orjson

from distillguard.gateway.api_errors import ANTHROPIC
from distillguard.gateway.parsed_request import ParsedRequest, bad_request, text_of

__all__ = ["anthropic_request", "anthropic_response_fields", "anthropic_withhold"]


def _blocks_text(content: Any, param: str) -> tuple[str, bool, bool]:
    """Text of a content (string or blocks), whether it had an image, whether it was
    only tool results."""
    if isinstance(content, str):
        return content, False, False
    if not isinstance(content, list) or not content:
        raise bad_request(f"{param}: must be a string or a non-empty array of content blocks")
    texts, image, only_results = [], False, True
    for i, block in enumerate(content):
        where = f"{param}.{i}"
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            raise bad_request(f"{where}: must be an object with a 'type'")
        kind = block["type"]
        only_results &= kind == "tool_result"
        if kind == "text":
            texts.append(text_of(block.get("text"), f"{where}.text"))
        elif kind == "image":
            image = True
        elif kind == "tool_use":
            texts.append(f"[tool_use {block.get('name')} "
                         f"{orjson.dumps(block.get('input')).decode()}]")
        elif kind == "tool_result":
            inner = block.get("content", "")
            text, inner_image, _ = (_blocks_text(inner, f"{where}.content") if inner
                                    else ("", False, False))
            texts.append(text)
            image |= inner_image
    return "\n".join(texts), image, only_results


def anthropic_request(body: Any) -> ParsedRequest:
    """Check a Messages request; ``ApiError`` 400 naming the first problem."""
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise bad_request("model: Field required (a string)")
    max_tokens = body.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise bad_request("max_tokens: Field required (a positive integer)")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise bad_request("stream: must be true or false")
    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        raise bad_request("messages: Field required (a non-empty array)")
    messages, image = [], False
    for i, message in enumerate(raw):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise bad_request(f"messages.{i}: must be an object with role user or assistant")
        text, has_image, only_results = _blocks_text(message.get("content"),
                                                     f"messages.{i}.content")
        image |= has_image
        role = "tool" if only_results else message["role"]
        messages.append({"role": role, "content": text})
    system = body.get("system")
    if system is not None:
        system, _, _ = _blocks_text(system, "system")
    tools = body.get("tools")
    names = None
    if tools is not None:
        if not isinstance(tools, list):
            raise bad_request("tools: must be an array")
        names = [str(t.get("name", "")) if isinstance(t, dict) else "" for t in tools]
    return ParsedRequest(ANTHROPIC, body, model, stream, messages, system, names, image)


def anthropic_response_fields(body: dict[str, Any]) -> dict[str, Any]:
    """Answer, reasoning and token counts of a non-streamed response, for the log."""
    texts, thinking = [], []
    for block in body.get("content") or []:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text":
            texts.append(str(block.get("text", "")))
        elif block.get("type") == "thinking":
            thinking.append(str(block.get("thinking", "")))
        elif block.get("type") == "tool_use":
            texts.append(f"[tool_use {block.get('name')} "
                         f"{orjson.dumps(block.get('input')).decode()}]")
    usage = body.get("usage") or {}
    return {"response": "\n".join(texts), "reasoning": "\n".join(thinking) if thinking else None,
            "input_tokens": usage.get("input_tokens"),
            "output_tokens": usage.get("output_tokens")}


def anthropic_withhold(body: dict[str, Any], summary: Any) -> int:
    """Replace every thinking block's text with ``summary(text)``; return characters withheld.

    The block's ``signature`` is left as the upstream sent it.
    """
    withheld = 0
    for block in body.get("content") or []:
        if isinstance(block, dict) and block.get("type") == "thinking" and block.get("thinking"):
            withheld += len(block["thinking"])
            block["thinking"] = summary(block["thinking"])
    return withheld
