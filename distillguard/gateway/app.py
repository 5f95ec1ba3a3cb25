"""The gateway's HTTP apps: the API (proxy, models, metrics) and the admin API."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from distillguard.gateway.api_errors import ANTHROPIC, OPENAI
from distillguard.gateway.config import AccountInfo
from distillguard.gateway.policy import Decision, decide
from distillguard.gateway.proxy import ProxyEndpoint
from distillguard.gateway.service import Gateway

__all__ = ["admin_app", "gateway_app"]


def gateway_app(gateway: Gateway) -> Starlette:
    """The API clients call: both model APIs, ``GET /v1/models`` and ``/metrics``."""

    async def models(request: Request) -> Response:
        created = int(time.time())
        return JSONResponse({"object": "list", "data": [
            {"id": m, "object": "model", "created": created, "owned_by": "distillguard"}
            for m in gateway.config.models]})

    async def metrics(request: Request) -> Response:
        gateway.metrics.watchlist_accounts.set(len(gateway.watchlist.entries))
        if gateway.log is not None:
            gateway.metrics.log_records.set(gateway.log.records_written)
        return Response(gateway.metrics.render(),
                        media_type="text/plain; version=0.0.4; charset=utf-8")

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await gateway.start()
        try:
            yield
        finally:
            await gateway.close()

    return Starlette(routes=[
        Route("/v1/chat/completions", ProxyEndpoint(gateway, OPENAI, "/v1/chat/completions"),
              methods=["POST"]),
        Route("/v1/messages", ProxyEndpoint(gateway, ANTHROPIC, "/v1/messages"),
              methods=["POST"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/healthz", health, methods=["GET"]),
    ], lifespan=lifespan)


def _rule_dict(rule: Any) -> dict[str, Any]:
    out = asdict(rule)
    for key in ("verdicts", "tiers"):
        if out[key] is not None:
            out[key] = sorted(out[key])
    return {k: v for k, v in out.items() if v not in (None, {}, 0) or k == "shadow"}


def admin_app(gateway: Gateway, *, token: str | None = None) -> Starlette:
    """Operators' view: an account's state and the policy in force.

    Served on its own port; with ``token``, every call needs ``Authorization: Bearer TOKEN``.
    """

    def denied(request: Request) -> Response | None:
        if token and request.headers.get("authorization") != f"Bearer {token}":
            return JSONResponse({"error": "admin token required"}, status_code=401)
        return None

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
    ])
