"""What keeps the dashboard safe to open on attacker-written text.

- Every response carries a Content-Security-Policy allowing scripts and styles
  from the dashboard itself only (no inline script runs, whatever a prompt
  contains), and no framing, sniffing or referrer leaks.
- ``Host`` must be one the server answers to (a page of another site that
  rebinds its name to 127.0.0.1 is refused).
- With a token, every page and API call needs it: ``Authorization: Bearer``,
  or once as ``?token=`` in the browser, which swaps it for an HttpOnly,
  SameSite=Strict cookie and drops it from the address bar.
- Decisions are POSTs that carry a form token only the dashboard's own pages
  hold, from an ``Origin`` that is the dashboard's own (``check_post``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CONTENT_SECURITY_POLICY", "TOKEN_COOKIE", "DashboardGuard", "FormTokens",
           "check_post"]

CONTENT_SECURITY_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; "
                           "img-src 'self' data:; connect-src 'self'; font-src 'self'; "
                           "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
_HEADERS = [(b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"same-origin"),
            (b"cross-origin-opener-policy", b"same-origin"),
            (b"cross-origin-resource-policy", b"same-origin"),
            (b"cache-control", b"no-store")]
TOKEN_COOKIE = "distillguard_dashboard"


def _digest(secret: str, what: str) -> str:
    return hmac.new(secret.encode(), what.encode(), hashlib.sha256).hexdigest()


class FormTokens:
    """The token every form of the dashboard carries (one per server start)."""

    def __init__(self, secret: str | None = None) -> None:
        self._secret = secret or secrets.token_hex(32)

    @property
    def value(self) -> str:
        return _digest(self._secret, "form")

    def valid(self, given: str) -> bool:
        return hmac.compare_digest(given.encode(), self.value.encode())


def _error(scope: Scope, status: int, message: str) -> Response:
    if scope["path"].startswith("/api/"):
        return JSONResponse({"error": {"status": status, "message": message}}, status)
    return PlainTextResponse(message, status)


class DashboardGuard:
    """Pure ASGI middleware: host check, token check, security headers."""

    def __init__(self, app: ASGIApp, *, token: str | None = None,
                 allowed_hosts: Iterable[str] | None = None) -> None:
        self.app = app
        self.token = token
        self.allowed_hosts = None if allowed_hosts is None else {h.lower() for h in allowed_hosts}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []),
                                      *((k, v) for k, v in _HEADERS if k not in names)]
            await send(message)

        refused = self._refuse(scope)
        if refused is not None:
            await refused(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)

    def _refuse(self, scope: Scope) -> Response | None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        host = headers.get("host", "").rsplit(":", 1)[0].strip("[]").lower()
        if self.allowed_hosts is not None and host not in self.allowed_hosts:
            return _error(scope, 400, "Invalid host header")
        if self.token is None:
            return None
        expected = _digest(self.token, "session")
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"))
        given = dict(query).get("token")
        if given is not None and scope["method"] == "GET":
            if not hmac.compare_digest(given.encode(), self.token.encode()):
                return _error(scope, 401, "Wrong token.")
            rest = urlencode([(k, v) for k, v in query if k != "token"])
            response = RedirectResponse(scope["path"] + (f"?{rest}" if rest else ""), 303)
            response.set_cookie(TOKEN_COOKIE, expected, httponly=True, samesite="strict",
                                path="/")
            return response
        bearer = headers.get("authorization", "")
        if bearer.lower().startswith("bearer ") and hmac.compare_digest(
                bearer[7:].strip().encode(), self.token.encode()):
            return None
        cookie = Request(scope).cookies.get(TOKEN_COOKIE, "")
        if hmac.compare_digest(cookie.encode(), expected.encode()):
            return None
        return _error(scope, 401, "This dashboard needs its token: open it once with "
                                  "?token=... or send Authorization: Bearer ...")


def check_post(request: Request, form: dict[str, Any], tokens: FormTokens) -> str | None:
    """Why a POST is refused (None: accepted): it must come from the dashboard's own
    origin and carry the form token of its pages."""
    origin = request.headers.get("origin")
    host = request.headers.get("host", "")
    if origin is not None and origin.split("://", 1)[-1] != host:
        return f"cross-site request refused (origin {origin})"
    if not tokens.valid(str(form.get("form_token", ""))):
        return "missing or stale form token: reload the page and try again"
    return None
