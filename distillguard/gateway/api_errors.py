"""Errors a client sees, in the error format of the API it called.

OpenAI: ``{"error": {"message", "type", "param", "code"}}``.
Anthropic: ``{"type": "error", "error": {"type", "message"}}``.
One ``ApiError`` carries the status and the words; ``error_body`` renders it
for either API, so every refusal (bad input, policy, upstream failure) is shaped
in one place.
"""

from __future__ import annotations

from typing import Literal

import orjson

from distillguard.errors import DistillguardError

__all__ = ["ANTHROPIC", "OPENAI", "Api", "ApiError", "error_body"]

Api = Literal["openai", "anthropic"]
OPENAI: Api = "openai"
ANTHROPIC: Api = "anthropic"

# Status to Anthropic's error type (docs.anthropic.com, "Errors").
_ANTHROPIC_TYPES = {400: "invalid_request_error", 401: "authentication_error",
                    403: "permission_error", 404: "not_found_error", 413: "request_too_large",
                    429: "rate_limit_error", 500: "api_error", 502: "api_error",
                    503: "overloaded_error", 504: "api_error"}
# Status to OpenAI's error type.
_OPENAI_TYPES = {400: "invalid_request_error", 401: "invalid_request_error",
                 403: "permission_error", 404: "invalid_request_error",
                 413: "invalid_request_error", 429: "rate_limit_error", 500: "server_error",
                 502: "server_error", 503: "server_error", 504: "server_error"}


class ApiError(DistillguardError):
    """A request answered with an error: ``status``, a message telling the client what to do,
    a stable ``code`` and, for bad input, the ``param`` at fault."""

    def __init__(self, status: int, message: str, *, code: str, param: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.headers = headers or {}


def error_body(api: Api, error: ApiError) -> bytes:
    """The JSON body of ``error`` in ``api``'s own error format."""
    if api == ANTHROPIC:
        kind = _ANTHROPIC_TYPES.get(error.status, "api_error")
        return orjson.dumps({"type": "error", "error": {"type": kind, "message": error.message}})
    kind = _OPENAI_TYPES.get(error.status, "server_error")
    return orjson.dumps({"error": {"message": error.message, "type": kind,
                                   "param": error.param, "code": error.code}})
