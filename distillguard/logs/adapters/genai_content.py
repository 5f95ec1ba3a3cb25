"""The conversation of an exchange from the shapes GenAI telemetry and gateway logs give it.

Two families of shapes:

- message arrays with ``parts`` (OpenTelemetry GenAI ``gen_ai.input.messages``,
  ``gen_ai.output.messages``, ``gen_ai.system_instructions``): each part has a ``type``,
  ``text`` and ``reasoning`` parts carry ``content``, ``tool_call`` parts a ``name`` and
  ``arguments``, ``tool_call_response`` parts a ``response``, ``blob``/``uri``/``file``
  parts a ``modality``;
- OpenAI chat messages (``{role, content}``, content a string or a list of parts with
  ``text``; ``tool_calls`` on assistant turns), as the older GenAI events, LiteLLM and
  OpenAI batch files carry them.

Both become the format's ``messages`` (roles ``user``, ``assistant``, ``tool``) and
``system``, with the text the gateway would log for the same request: text parts joined
by line breaks, a tool call as ``[tool_call NAME ARGUMENTS]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from distillguard.errors import RecordError

__all__ = ["Conversation", "chat_message_text", "conversation_of_chat", "conversation_of_parts",
           "decode_json_value", "parts_text", "tool_names"]

SYSTEM_ROLES = frozenset({"system", "developer"})
_ROLES = {"user": "user", "assistant": "assistant", "tool": "tool", "function": "tool"}
_TEXT_PARTS = frozenset({"text", "input_text", "output_text"})
_IMAGE_PARTS = frozenset({"image_url", "input_image"})


@dataclass(slots=True)
class Conversation:
    """What a request said and what came back, as the format's fields."""

    messages: list[dict[str, str]] = field(default_factory=list)
    system: list[str] = field(default_factory=list)
    has_image: bool = False
    response: str | None = None
    reasoning: str | None = None

    def fields(self) -> dict[str, Any]:
        return {"messages": self.messages or None,
                "system": "\n".join(self.system) if self.system else None,
                "has_image": True if self.has_image else None,
                "response": self.response, "reasoning": self.reasoning}

    def add(self, role: Any, text: str) -> None:
        if role in SYSTEM_ROLES:
            self.system.append(text)
        else:
            self.messages.append({"role": _ROLES.get(role, role), "content": text})


def decode_json_value(value: Any, name: str) -> Any:
    """An attribute holding JSON text decoded (structured values are returned as they are);
    ``RecordError`` ``bad_content`` when the text is not JSON."""
    if not isinstance(value, str):
        return value
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise RecordError("bad_content", f"{name} is not valid JSON: {exc}") from exc


def tool_names(tools: Any) -> list[str] | None:
    """The names of tool definitions (OpenAI ``{type, function: {name}}``, or ``{name}`` as
    the Responses API and GenAI ``gen_ai.tool.definitions`` give them), or None.

    >>> tool_names([{"type": "function", "function": {"name": "search"}}, {"name": "calc"}])
    ['search', 'calc']
    """
    if not isinstance(tools, list):
        return None
    return [str(t.get("name") or (t.get("function") or {}).get("name", ""))
            if isinstance(t, dict) else str(t) for t in tools]


def _json_text(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value, default=str).decode()


def _tool_call(name: Any, arguments: Any) -> str:
    return f"[tool_call {name} {_json_text(arguments) if arguments is not None else ''}]"


def parts_text(parts: Any, conversation: Conversation | None = None) -> tuple[str, str]:
    """The text and the reasoning of a list of GenAI message parts; an image part is noted
    on ``conversation``."""
    if isinstance(parts, str):
        return parts, ""
    texts: list[str] = []
    reasoning: list[str] = []
    for part in parts if isinstance(parts, list) else []:
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if kind in _TEXT_PARTS:
            texts.append(str(part.get("content", part.get("text", ""))))
        elif kind == "reasoning":
            reasoning.append(str(part.get("content", "")))
        elif kind == "tool_call":
            texts.append(_tool_call(part.get("name"), part.get("arguments")))
        elif kind == "tool_call_response":
            texts.append(_json_text(part.get("response", part.get("result", ""))))
        elif conversation is not None and part.get("modality") == "image":
            conversation.has_image = True
    return "\n".join(texts), "\n".join(reasoning)


def conversation_of_parts(inputs: Any, outputs: Any, system: Any) -> Conversation:
    """A conversation from GenAI message arrays (decoded): ``inputs`` the request's
    messages, ``outputs`` the answer's choices (the first is the answer), ``system``
    the system instructions (a list of parts); any of them may be None."""
    conversation = Conversation()
    if system is not None:
        text, _ = parts_text(system, conversation)
        if text:
            conversation.system.append(text)
    for i, message in enumerate(inputs or []):
        if not isinstance(message, dict):
            raise RecordError("bad_content", f"input message {i} is not an object")
        text, _ = parts_text(message.get("parts"), conversation)
        conversation.add(message.get("role"), text)
    first = next((m for m in outputs or [] if isinstance(m, dict)), None)
    if first is not None:
        text, reasoning = parts_text(first.get("parts"), conversation)
        conversation.response = text
        conversation.reasoning = reasoning or None
    return conversation


def chat_message_text(message: dict[str, Any], conversation: Conversation | None = None) -> str:
    """The text of an OpenAI chat message: its content (a string or text parts) and, for
    an assistant turn, its tool calls."""
    content = message.get("content")
    texts: list[str] = []
    if isinstance(content, str):
        texts.append(content)
    elif isinstance(content, list):
        for part in content:
            if not isinstance(part, dict):
                continue
            if part.get("type") in _TEXT_PARTS:
                texts.append(str(part.get("text", "")))
            elif part.get("type") == "refusal":
                texts.append(str(part.get("refusal", "")))
            elif conversation is not None and part.get("type") in _IMAGE_PARTS:
                conversation.has_image = True
    calls = message.get("tool_calls")
    functions = [c.get("function") for c in calls if isinstance(c, dict)] if isinstance(
        calls, list) else []
    functions.append(message.get("function_call"))
    texts += [_tool_call(f.get("name"), f.get("arguments")) for f in functions
              if isinstance(f, dict)]
    return "\n".join(t for t in texts if t)


def conversation_of_chat(messages: Any, answer: Any = None) -> Conversation:
    """A conversation from OpenAI chat ``messages`` (a list; a string is one user turn)
    and ``answer``: a chat completion (its first choice), a message, or text."""
    conversation = Conversation()
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    for i, message in enumerate(messages if isinstance(messages, list) else []):
        if not isinstance(message, dict):
            raise RecordError("bad_content", f"message {i} is not an object")
        conversation.add(message.get("role"), chat_message_text(message, conversation))
    if isinstance(answer, dict) and isinstance(answer.get("choices"), list):
        choices = answer["choices"]
        answer = choices[0] if choices else None
        if isinstance(answer, dict):
            answer = answer.get("message") or {"content": answer.get("text")}
    if isinstance(answer, dict):
        conversation.response = chat_message_text(answer)
        reasoning = answer.get("reasoning_content") or answer.get("reasoning")
        conversation.reasoning = reasoning if isinstance(reasoning, str) else None
    elif isinstance(answer, str):
        conversation.response = answer
    return conversation
