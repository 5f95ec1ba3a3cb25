"""The gateway's HTTP apps: the API (proxy, models) and the admin API (state, policy,
metrics). Every refusal, the router's own included, is JSON in the API's format."""

from __future__ import annotations

import contextlib
import hmac
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from distillguard.errors import ApiError
from distillguard.gateway.api_errors import ANTHROPIC, OPENAI, api_of_path, error_body
from distillguard.gateway.config import AccountInfo
from distillguard.gateway.policy import Decision, decide
from distillguard.gateway.proxy import ProxyEndpoint
from distillguard.gateway.service import Gateway

__all__ = ["admin_app", "gateway_app"]


def _http_error(request: Request, exc: Exception) -> Response:
    """The router's 404 and 405, and any unexpected failure's 500, in the API's format."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    path = request.url.path
    if status == 404:
        error = ApiError(404, f"No such endpoint: {request.method} {path}. This gateway serves "
                         "POST /v1/chat/completions, POST /v1/messages and GET /v1/models.",
                         code="not_found")
    elif status == 405:
        error = ApiError(405, f"Method {request.method} is not allowed on {path}.",
                         code="method_not_allowed")
    else:
        error = ApiError(status, "The gateway failed on this request.", code="internal_error")
    headers = dict(exc.headers or {}) if isinstance(exc, HTTPException) else None
    return Response(error_body(api_of_path(path), error), status_code=status, headers=headers,
                    media_type="application/json")


_ERROR_HANDLERS: dict[Any, Any] = {404: _http_error, 405: _http_error, Exception: _http_error}


class _ProxyRoutes:
    """``POST`` to a proxied path goes straight to its endpoint; everything else (other
    paths and methods, the lifespan) to ``app``, the router.

    The hot path skips the router's middleware stack and route matching (9 % of the
    gateway's CPU per request, profiled). What that stack did for it is kept: an
    unexpected failure is answered 500 in the API's format (when the response has not
    begun) and re-raised for the server to log.
    """

    def __init__(self, endpoints: dict[str, ProxyEndpoint], app: Starlette) -> None:
        self.endpoints = endpoints
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        endpoint = self.endpoints.get(scope.get("path", "")) if scope["type"] == "http" \
            and scope["method"] == "POST" else None
        if endpoint is None:
            await self.app(scope, receive, send)
            return
        try:
            await endpoint(scope, receive, send)
        except Exception as exc:
            with contextlib.suppress(Exception):  # a response already begun cannot change
                await _http_error(Request(scope), exc)(scope, receive, send)
            raise


def gateway_app(gateway: Gateway) -> Any:
    """The API clients call, as an ASGI app: both model APIs, ``GET /v1/models`` and
    ``/healthz``.

    Metrics are on the admin app: counts per rule and verdict would tell a client
    when it has been flagged.
    """

    async def models(request: Request) -> Response:
        created = int(time.time())
        return JSONResponse({"object": "list", "data": [
            {"id": m, "object": "model", "created": created, "owned_by": "distillguard"}
            for m in gateway.config.models]})

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await gateway.start()
        try:
            yield
        finally:
            await gateway.close()

    endpoints = {path: ProxyEndpoint(gateway, api, path) for path, api in (
        ("/v1/chat/completions", OPENAI), ("/v1/messages", ANTHROPIC))}
    router = Starlette(routes=[
        *(Route(path, endpoint, methods=["POST"]) for path, endpoint in endpoints.items()),
        Route("/v1/models", models, methods=["GET"]),
        Route("/healthz", health, methods=["GET"]),
    ], lifespan=lifespan, exception_handlers=_ERROR_HANDLERS)
    return _ProxyRoutes(endpoints, router)


def _rule_dict(rule: Any) -> dict[str, Any]:
    out = asdict(rule)
    for key in ("verdicts", "tiers"):
        if out[key] is not None:
            out[key] = sorted(out[key])
    return {k: v for k, v in out.items() if v not in (None, {}, 0) or k == "shadow"}


def admin_app(gateway: Gateway, *, token: str | None = None) -> Starlette:
    """Operators' view: an account's state, the policy in force, Prometheus metrics.

    Served on its own port; with ``token``, every call needs ``Authorization: Bearer TOKEN``.
    """
    expected = f"Bearer {token}".encode() if token else None

    def denied(request: Request) -> Response | None:
        if expected is not None and not hmac.compare_digest(
                request.headers.get("authorization", "").encode(), expected):
            error = ApiError(401, "This admin API needs 'Authorization: Bearer TOKEN'.",
                             code="admin_token_required")
            return Response(error_body(OPENAI, error), status_code=401,
                            media_type="application/json")
        return None

    async def metrics(request: Request) -> Response:
        if (refused := denied(request)) is not None:
            return refused
        gateway.metrics.watchlist_accounts.set(len(gateway.watchlist.entries))
        if gateway.log is not None:
            gateway.metrics.log_records.set(gateway.log.records_written)
        if gateway.spans is not None:
            for outcome, count in (("sent", gateway.spans.spans_sent),
                                   ("dropped", gateway.spans.spans_dropped),
                                   ("queued", gateway.spans.queued)):
                gateway.metrics.spans.labels(outcome).set(count)
        return Response(gateway.metrics.render(),
                        media_type="text/plain; version=0.0.4; charset=utf-8")

    async def account(request: Request) -> Response:
        if (refused := denied(request)) is not None:
            return refused
        account_id = request.path_params["account_id"]
        info = gateway.identifier.by_account.get(account_id) or AccountInfo(account_id,
                                                                              listed=False)
        window = await gateway.state.fresh_window(account_id)
        entry = gateway.watchlist.get(account_id)
        decision = decide(gateway.config, info, entry, window)
        throttled = Decision("throttle", None, False, None)
        levels = await gateway.state.levels(gateway.charges(info, throttled, 0))
        return JSONResponse({
            "account_id": account_id, "in_key_table": info.listed,
            "org_id": info.org_id, "tier": info.tier, "verified": info.verified,
            "watchlist": asdict(entry) if entry else None,
            "window": window.as_dict(),
            "decision": {"action": decision.action, "rule": decision.rule,
                         "shadow": decision.shadow, "enforced": decision.enforced},
            "limiter_levels": levels})

    async def policy(request: Request) -> Response:
        if (refused := denied(request)) is not None:
            return refused
        c = gateway.config
        return JSONResponse({
            "mode": c.mode, "models": list(c.models), "state": gateway.state.name,
            "rules": [_rule_dict(r) for r in c.rules],
            "limits": {"account": asdict(c.limits_account), "org": asdict(c.limits_org)},
            "throttle": {"account": asdict(c.throttle_account), "org": asdict(c.throttle_org)},
            "watchlist": {"path": str(gateway.watchlist.path) if gateway.watchlist.path else None,
                          "accounts": len(gateway.watchlist.entries),
                          "generated_at": gateway.watchlist.generated_at,
                          "loads": gateway.watchlist.loads, "error": gateway.watchlist.error},
            "scoring": {"worker": c.scoring_worker, "scored": gateway.scorer.scored,
                        "pending": gateway.scorer.pending}})

    return Starlette(routes=[
        Route("/admin/accounts/{account_id:str}", account, methods=["GET"]),
        Route("/admin/policy", policy, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ], exception_handlers=_ERROR_HANDLERS)
