"""A client request, read into the exchange-log's terms (shared/spec/exchange-log.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from distillguard.errors import ApiError
from distillguard.gateway.api_errors import Api

__all__ = ["OpaqueParts", "ParsedRequest", "ToolDefinitions", "bad_request", "estimate_tokens",
           "named", "text_of"]


@dataclass(slots=True)
class ParsedRequest:
    """What the gateway logs and scores of a request; ``body`` is forwarded as parsed.

    ``messages`` are already in the log's shape: roles ``user``, ``assistant``
    or ``tool``, content flattened to text; system/developer turns are in
    ``system``. ``opaque_parts`` notes the content parts that reach the model but
    are not text (images, audio, PDFs): where, their type and their size.
    """

    api: Api
    body: dict[str, Any]
    model: str
    stream: bool
    messages: list[dict[str, str]]
    system: str | None
    tools: list[str] | None
    has_image: bool
    opaque_parts: list[dict[str, Any]] | None = None

    @property
    def prompt_chars(self) -> int:
        return sum(len(m["content"]) for m in self.messages) + len(self.system or "")


class OpaqueParts:
    """Collects the content parts of a request that are not read as text.

    Each is noted as ``{"message": index in the request's messages (or "system"),
    "type", "bytes": size of the part's JSON}``. Part types the parser does not
    know are refused (400 naming the type) unless ``allow_unknown``: a prompt
    could otherwise travel to the model unlogged and unscored.
    """

    __slots__ = ("allow_unknown", "parts")

    def __init__(self, allow_unknown: bool) -> None:
        self.allow_unknown = allow_unknown
        self.parts: list[dict[str, Any]] = []

    def note(self, part: dict[str, Any], message: int | str) -> None:
        self.parts.append({"message": message, "type": part["type"],
                           "bytes": len(orjson.dumps(part))})

    def unknown(self, part: dict[str, Any], message: int | str, param: str) -> None:
        if not self.allow_unknown:
            raise bad_request(f"'{param}': unknown content part type {part['type']!r}; this "
                              "gateway reads only the part types it can log (set "
                              "content_parts.unknown: allow in its config to pass others on)",
                              param, code="unknown_content_part")
        self.note(part, message)

    @property
    def found(self) -> list[dict[str, Any]] | None:
        return self.parts or None


def bad_request(message: str, param: str | None = None, code: str = "invalid_request") -> ApiError:
    return ApiError(400, message, code=code, param=param)


def text_of(value: Any, param: str) -> str:
    """``value`` as text; ``ApiError`` 400 naming ``param`` when it is not a string."""
    if not isinstance(value, str):
        raise bad_request(f"'{param}' must be a string, got {type(value).__name__}", param)
    return value


class ToolDefinitions:
    """The tool definitions of a request: their names (the log's ``tools``) and what the
    model reads of them besides, as text.

    A definition's description and parameter schema reach the model with the name
    (the model APIs render them into the system prompt), so text placed there is a
    prompt like any other. Each definition with more than a name becomes one line,
    ``[tool NAME] DESCRIPTION {the rest of the definition as JSON}``, added to the
    logged and scored system text (``with_system``); empty values and cache controls
    are left out, so a bare name adds no line.
    """

    __slots__ = ("names", "texts")

    _NOT_TEXT = frozenset({"name", "description", "cache_control"})

    def __init__(self) -> None:
        self.names: list[str] = []
        self.texts: list[str] = []

    def add(self, definition: Any, param: str) -> None:
        """One definition (an object with ``name``, ``description`` and the rest)."""
        if not isinstance(definition, dict):
            self.names.append("")
            return
        name = str(definition.get("name", ""))
        self.names.append(name)
        description = definition.get("description")
        pieces = [f"[tool {name}]"]
        if description is not None and description != "":
            pieces.append(text_of(description, f"{param}.description"))
        rest = {k: v for k, v in definition.items()
                if k not in self._NOT_TEXT and v not in (None, "", {}, [])}
        if rest:
            pieces.append(orjson.dumps(rest).decode())
        if len(pieces) > 1:
            self.texts.append(" ".join(pieces))

    def with_system(self, system: str | None) -> str | None:
        """``system`` followed by the definitions' lines (None when both are empty)."""
        if not self.texts:
            return system
        return "\n".join([system, *self.texts] if system else self.texts)


def named(text: str, name: Any, param: str) -> str:
    """A message's text, preceded by its ``name`` field (``[name NAME]``) when it has one:
    the name reaches the model as well."""
    if name is None or name == "":
        return text
    return f"[name {text_of(name, param)}]\n{text}" if text else f"[name {text_of(name, param)}]"


def estimate_tokens(chars: int) -> int:
    """Tokens in ``chars`` characters, before the upstream reports usage (about 4 per token)."""
    return chars // 4 + 1
