"""Anthropic Messages: read a request, read a response, withhold reasoning.

Reasoning comes back as ``thinking`` content blocks (``thinking_delta`` events
when streamed). Tool results travel in ``user`` turns; a turn made only of
tool results is logged with role ``tool``. Text reaching the model in any block
(text, tool results, documents with a text source, search results, their titles
and context) is logged and scored; images, PDFs and earlier thinking are noted
as opaque parts.
"""

from __future__ import annotations

from typing import Any

import orjson

from distillguard.gateway.api_errors import ANTHROPIC
from distillguard.gateway.parsed_request import (
    OpaqueParts,
    ParsedRequest,
    ToolDefinitions,
    bad_request,
    text_of,
)

__all__ = ["anthropic_map_answers", "anthropic_request", "anthropic_response_fields",
           "anthropic_withhold"]


# Blocks that reach the model but are not text the gateway can read: noted as opaque.
_OPAQUE_BLOCKS = frozenset({
    "image", "thinking", "redacted_thinking", "container_upload", "web_search_tool_result",
    "web_fetch_tool_result", "code_execution_tool_result", "bash_code_execution_tool_result",
    "text_editor_code_execution_tool_result"})
_TOOL_USE_BLOCKS = frozenset({"tool_use", "server_tool_use", "mcp_tool_use"})
_TOOL_RESULT_BLOCKS = frozenset({"tool_result", "mcp_tool_result"})
_TEXT_SOURCES = frozenset({"text", "content"})
_OPAQUE_SOURCES = frozenset({"base64", "url", "file"})


class _Blocks:
    """The text of content blocks, whether one was an image, and whether all were tool
    results; blocks that are not text go to ``opaque``."""

    __slots__ = ("image", "message", "opaque", "texts")

    def __init__(self, opaque: OpaqueParts, message: int | str) -> None:
        self.opaque = opaque
        self.message = message
        self.texts: list[str] = []
        self.image = False

    def read(self, content: Any, param: str) -> bool:
        """Add ``content`` (string or blocks); True when it held only tool results."""
        if isinstance(content, str):
            self.texts.append(content)
            return False
        if not isinstance(content, list) or not content:
            raise bad_request(f"{param}: must be a string or a non-empty array of content "
                              "blocks")
        only_results = True
        for i, block in enumerate(content):
            where = f"{param}.{i}"
            if not isinstance(block, dict) or not isinstance(block.get("type"), str):
                raise bad_request(f"{where}: must be an object with a 'type'")
            kind = block["type"]
            only_results &= kind in _TOOL_RESULT_BLOCKS
            if kind == "text":
                self.texts.append(text_of(block.get("text"), f"{where}.text"))
            elif kind in _TOOL_USE_BLOCKS:
                self.texts.append(f"[tool_use {block.get('name')} "
                                  f"{orjson.dumps(block.get('input')).decode()}]")
            elif kind in _TOOL_RESULT_BLOCKS:
                if block.get("content"):
                    self.read(block["content"], f"{where}.content")
            elif kind == "document":
                self._document(block, where)
            elif kind == "search_result":
                self._titled(block, where)
                self.read(block.get("content"), f"{where}.content")
            elif kind in _OPAQUE_BLOCKS:
                self.image |= kind == "image"
                self.opaque.note(block, self.message)
            else:
                self.opaque.unknown(block, self.message, f"{where}.type")
        return only_results

    def _titled(self, block: dict[str, Any], where: str) -> None:
        for key in ("title", "context"):
            if block.get(key) is not None:
                self.texts.append(text_of(block[key], f"{where}.{key}"))

    def _document(self, block: dict[str, Any], where: str) -> None:
        """A document's title and context, and its source: plain text or content blocks
        are read, a PDF, URL or file reference is opaque."""
        source = block.get("source")
        kind = source.get("type") if isinstance(source, dict) else None
        if kind not in _TEXT_SOURCES and kind not in _OPAQUE_SOURCES:
            self.opaque.unknown(block, self.message, f"{where}.source.type")
            return
        self._titled(block, where)
        if kind == "text":
            self.texts.append(text_of(source.get("data"), f"{where}.source.data"))
        elif kind == "content":
            self.read(source.get("content"), f"{where}.source.content")
        else:
            self.opaque.note(block, self.message)

    @property
    def text(self) -> str:
        return "\n".join(self.texts)


def anthropic_request(body: Any, *, allow_unknown_parts: bool = False) -> ParsedRequest:
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
    opaque = OpaqueParts(allow_unknown_parts)
    messages, image = [], False
    for i, message in enumerate(raw):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise bad_request(f"messages.{i}: must be an object with role user or assistant")
        blocks = _Blocks(opaque, i)
        only_results = blocks.read(message.get("content"), f"messages.{i}.content")
        image |= blocks.image
        role = "tool" if only_results else message["role"]
        messages.append({"role": role, "content": blocks.text})
    system = body.get("system")
    if system is not None:
        blocks = _Blocks(opaque, "system")
        blocks.read(system, "system")
        system = blocks.text
    tools = body.get("tools")
    definitions = ToolDefinitions()
    if tools is not None:
        if not isinstance(tools, list):
            raise bad_request("tools: must be an array")
        for i, tool in enumerate(tools):
            definitions.add(tool, f"tools.{i}")
    return ParsedRequest(ANTHROPIC, body, model, stream, messages,
                         definitions.with_system(system),
                         definitions.names if tools is not None else None, image, opaque.found)


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


def anthropic_map_answers(body: dict[str, Any], change: Any, *, last_only: bool = False) -> bool:
    """Replace the text blocks' text (the last one's only, with ``last_only``) with
    ``change(text)``; True when one changed."""
    blocks = [b for b in body.get("content") or []
              if isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str)]
    changed = False
    for block in blocks[-1:] if last_only else blocks:
        new = change(block["text"])
        changed |= new != block["text"]
        block["text"] = new
    return changed
