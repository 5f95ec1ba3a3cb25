"""OpenAI Chat Completions: read a request, read a response, withhold reasoning.

Reasoning text comes back, in OpenAI-compatible servers that return it, as
``message.reasoning_content`` (or ``reasoning``) and as the same key in stream
deltas. Text parts (``text``, ``input_text``, refusals) are logged and scored;
images, audio and files are noted as opaque parts.
"""

from __future__ import annotations

from typing import Any

from distillguard.gateway.api_errors import OPENAI
from distillguard.gateway.parsed_request import (
    OpaqueParts,
    ParsedRequest,
    ToolDefinitions,
    bad_request,
    named,
    text_of,
)

__all__ = ["REASONING_KEYS", "openai_map_answers", "openai_request", "openai_response_fields",
           "openai_withhold"]

REASONING_KEYS = ("reasoning_content", "reasoning")
_ROLES = {"user": "user", "assistant": "assistant", "tool": "tool", "function": "tool"}
_SYSTEM_ROLES = frozenset({"system", "developer"})
# Content part types: read as text, or noted as opaque (type and size).
_TEXT_PARTS = frozenset({"text", "input_text"})
_IMAGE_PARTS = frozenset({"image_url", "input_image"})
_OPAQUE_PARTS = _IMAGE_PARTS | {"input_audio", "file", "input_file"}


def _content(content: Any, param: str, opaque: OpaqueParts, message: int) -> tuple[str, bool]:
    """Text of a message's content (string or list of parts) and whether it had an image."""
    if content is None:
        return "", False
    if isinstance(content, str):
        return content, False
    if not isinstance(content, list):
        raise bad_request(f"'{param}' must be a string or an array of content parts", param)
    texts, image = [], False
    for i, part in enumerate(content):
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            raise bad_request(f"'{param}[{i}]' must be an object with a 'type'", f"{param}[{i}]")
        kind = part["type"]
        if kind in _TEXT_PARTS:
            texts.append(text_of(part.get("text"), f"{param}[{i}].text"))
        elif kind == "refusal":
            texts.append(text_of(part.get("refusal"), f"{param}[{i}].refusal"))
        elif kind in _OPAQUE_PARTS:
            image |= kind in _IMAGE_PARTS
            opaque.note(part, message)
        else:
            opaque.unknown(part, message, f"{param}[{i}].type")
    return "\n".join(texts), image


def _tool_calls(message: dict[str, Any]) -> str:
    """An assistant turn's tool calls (and the deprecated single ``function_call``) as text."""
    calls = message.get("tool_calls")
    functions = [c.get("function") for c in calls if isinstance(c, dict)] if isinstance(
        calls, list) else []
    functions.append(message.get("function_call"))
    return "\n".join(f"[tool_call {f.get('name')} {f.get('arguments', '')}]"
                     for f in functions if isinstance(f, dict))


def openai_request(body: Any, *, allow_unknown_parts: bool = False) -> ParsedRequest:
    """Check a Chat Completions request; ``ApiError`` 400 naming the first problem."""
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise bad_request("'model' is required and must be a string", "model")
    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        raise bad_request("'messages' is required and must be a non-empty array", "messages")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise bad_request("'stream' must be true or false", "stream")
    for key in ("max_tokens", "max_completion_tokens"):
        value = body.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                  or value < 1):
            raise bad_request(f"'{key}' must be a positive integer", key)
    opaque = OpaqueParts(allow_unknown_parts)
    messages, system, image = [], [], False
    for i, message in enumerate(raw):
        if not isinstance(message, dict):
            raise bad_request(f"'messages[{i}]' must be an object", f"messages[{i}]")
        role = message.get("role")
        if role not in _ROLES and role not in _SYSTEM_ROLES:
            raise bad_request(f"'messages[{i}].role' must be one of system, developer, user, "
                              f"assistant, tool; got {role!r}", f"messages[{i}].role")
        text, has_image = _content(message.get("content"), f"messages[{i}].content", opaque, i)
        text = named(text, message.get("name"), f"messages[{i}].name")
        image |= has_image
        if role in _SYSTEM_ROLES:
            system.append(text)
            continue
        calls = _tool_calls(message) if role == "assistant" else ""
        messages.append({"role": _ROLES[role], "content": "\n".join(filter(None, (text, calls)))})
    if not messages:
        raise bad_request("'messages' needs at least one user, assistant or tool message",
                          "messages")
    tools = _tool_definitions(body)
    return ParsedRequest(OPENAI, body, model, stream, messages,
                         tools.with_system("\n".join(system) if system else None),
                         tools.names if "tools" in body or "functions" in body else None,
                         image, opaque.found)


def _tool_definitions(body: dict[str, Any]) -> ToolDefinitions:
    """``tools`` (a function's definition under ``function``, a custom tool's under
    ``custom``) and the deprecated ``functions``."""
    definitions = ToolDefinitions()
    for key in ("tools", "functions"):
        listed = body.get(key)
        if listed is None:
            continue
        if not isinstance(listed, list):
            raise bad_request(f"'{key}' must be an array", key)
        for i, tool in enumerate(listed):
            if key == "functions" or not isinstance(tool, dict):
                definitions.add(tool, f"{key}[{i}]")
                continue
            kind = tool.get("type")
            kind = kind if isinstance(kind, str) and isinstance(tool.get(kind), dict) \
                else "function"
            definitions.add(tool.get(kind), f"{key}[{i}].{kind}")
    return definitions


def openai_response_fields(body: dict[str, Any]) -> dict[str, Any]:
    """Answer, reasoning and token counts of a non-streamed response, for the log."""
    choices = body.get("choices") or [{}]
    first = choices[0] if isinstance(choices[0], dict) else {}
    message = first.get("message") or {}
    reasoning = next((message[k] for k in REASONING_KEYS if isinstance(message.get(k), str)),
                     None)
    usage = body.get("usage") or {}
    content = message.get("content")
    return {"response": "\n".join(filter(None, (content if isinstance(content, str) else "",
                                                _tool_calls(message)))),
            "reasoning": reasoning,
            "input_tokens": usage.get("prompt_tokens"),
            "output_tokens": usage.get("completion_tokens")}


def openai_withhold(body: dict[str, Any], summary: Any) -> int:
    """Replace every choice's reasoning with ``summary(text)``; return characters withheld."""
    withheld = 0
    for choice in body.get("choices") or []:
        message = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(message, dict):
            continue
        for key in REASONING_KEYS:
            if isinstance(message.get(key), str) and message[key]:
                withheld += len(message[key])
                message[key] = summary(message[key])
    return withheld


def openai_map_answers(body: dict[str, Any], change: Any) -> bool:
    """Replace every choice's answer text with ``change(text)``; True when one changed."""
    changed = False
    for choice in body.get("choices") or []:
        message = choice.get("message") if isinstance(choice, dict) else None
        if isinstance(message, dict) and isinstance(message.get("content"), str):
            new = change(message["content"])
            changed |= new != message["content"]
            message["content"] = new
    return changed
