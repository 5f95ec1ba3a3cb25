"""A client request, read into the exchange-log's terms (shared/spec/exchange-log.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from distillguard.gateway.api_errors import Api, ApiError

__all__ = ["ParsedRequest", "bad_request", "estimate_tokens", "text_of"]


@dataclass(slots=True)
class ParsedRequest:
    """What the gateway logs and scores of a request; ``body`` is forwarded as parsed.

    ``messages`` are already in the log's shape: roles ``user``, ``assistant``
    or ``tool``, content flattened to text; system/developer turns are in
    ``system``.
    """

    api: Api
    body: dict[str, Any]
    model: str
    stream: bool
    messages: list[dict[str, str]]
    system: str | None
    tools: list[str] | None
    has_image: bool

    @property
    def prompt_chars(self) -> int:
        return sum(len(m["content"]) for m in self.messages) + len(self.system or "")


def bad_request(message: str, param: str | None = None, code: str = "invalid_request") -> ApiError:
    return ApiError(400, message, code=code, param=param)


def text_of(value: Any, param: str) -> str:
    """``value`` as text; ``ApiError`` 400 naming ``param`` when it is not a string."""
    if not isinstance(value, str):
        raise bad_request(f"'{param}' must be a string, got {type(value).__name__}", param)
    return value


def estimate_tokens(chars: int) -> int:
    """Tokens in ``chars`` characters, before the upstream reports usage (about 4 per token)."""
    return chars // 4 + 1
