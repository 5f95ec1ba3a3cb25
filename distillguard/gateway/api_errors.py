"""Errors a client sees, in the error format of the API it called.

OpenAI: ``{"error": {"message", "type", "param", "code"}}``.
Anthropic: ``{"type": "error", "error": {"type", "message"}}``.
One ``ApiError`` (``distillguard.errors``) carries the status and the words;
``error_body`` renders it for either API, so every refusal (bad input, policy,
upstream failure, and the router's and the HTTP layer's own) is shaped in one place.
"""

from __future__ import annotations

from typing import Literal

import orjson

from distillguard.errors import ApiError

__all__ = ["ANTHROPIC", "OPENAI", "Api", "api_of_path", "error_body", "error_event"]

Api = Literal["openai", "anthropic"]
OPENAI: Api = "openai"
ANTHROPIC: Api = "anthropic"
_ANTHROPIC_PREFIX = "/v1/messages"

# Status to Anthropic's error type (docs.anthropic.com, "Errors").
_ANTHROPIC_TYPES = {400: "invalid_request_error", 401: "authentication_error",
                    403: "permission_error", 404: "not_found_error",
                    405: "invalid_request_error", 413: "request_too_large",
                    429: "rate_limit_error", 431: "invalid_request_error", 500: "api_error",
                    502: "api_error", 503: "overloaded_error", 504: "api_error"}
# Status to OpenAI's error type.
_OPENAI_TYPES = {400: "invalid_request_error", 401: "invalid_request_error",
                 403: "permission_error", 404: "invalid_request_error",
                 405: "invalid_request_error", 413: "invalid_request_error",
                 429: "rate_limit_error", 431: "invalid_request_error", 500: "server_error",
                 502: "server_error", 503: "server_error", 504: "server_error"}


def api_of_path(path: str) -> Api:
    """The API a request path belongs to: Anthropic under ``/v1/messages``, else OpenAI
    (also when the path is not known, as for a request that could not be parsed)."""
    return ANTHROPIC if path.startswith(_ANTHROPIC_PREFIX) else OPENAI


def error_body(api: Api, error: ApiError) -> bytes:
    """The JSON body of ``error`` in ``api``'s own error format."""
    if api == ANTHROPIC:
        kind = _ANTHROPIC_TYPES.get(error.status, "api_error")
        return orjson.dumps({"type": "error", "error": {"type": kind, "message": error.message}})
    kind = _OPENAI_TYPES.get(error.status, "server_error")
    return orjson.dumps({"error": {"message": error.message, "type": kind,
                                   "param": error.param, "code": error.code}})


def error_event(api: Api, error: ApiError) -> bytes:
    """``error`` as a server-sent event, to end a stream that has already begun: Anthropic's
    ``event: error``, or for OpenAI a ``data:`` chunk holding the error object (what
    OpenAI-compatible servers send)."""
    head = b"event: error\n" if api == ANTHROPIC else b""
    return head + b"data: " + error_body(api, error) + b"\n\n"
