"""One request through the gateway, as a plain ASGI endpoint (the hot path).

read body (413) -> identify (401) -> parse (400) -> decide -> refuse (403/429) or
forward -> answer (withholding reasoning when decided) -> log -> metrics.
Every parsed request is logged and queued for scoring, whatever became of it;
requests that cannot be parsed (no model, no messages) are not exchanges the
log format can hold and are only counted (``distillguard_gateway_rejected``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import orjson

from distillguard.errors import StateStoreError, UpstreamError, UpstreamTimeout
from distillguard.gateway.anthropic_format import (
    anthropic_request,
    anthropic_response_fields,
    anthropic_withhold,
)
from distillguard.gateway.api_errors import ANTHROPIC, Api, ApiError, error_body
from distillguard.gateway.identity import Caller
from distillguard.gateway.openai_format import (
    openai_request,
    openai_response_fields,
    openai_withhold,
)
from distillguard.gateway.parsed_request import ParsedRequest, estimate_tokens
from distillguard.gateway.policy import Decision
from distillguard.gateway.service import Gateway
from distillguard.gateway.streams import stream_watcher
from distillguard.gateway.token_bucket import BucketCharge
from distillguard.gateway.upstream import UpstreamReply

__all__ = ["ProxyEndpoint", "read_body"]

_JSON = [(b"content-type", b"application/json")]
_SSE = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
_PARSERS: dict[str, Callable[[Any], ParsedRequest]] = {"openai": openai_request,
                                                        "anthropic": anthropic_request}


async def read_body(receive: Any, headers: dict[str, str], limit: int) -> bytes:
    """The request body; ``ApiError`` 413 as soon as it is known to pass ``limit`` bytes."""
    too_large = ApiError(413, f"Request body is larger than the limit of {limit} bytes.",
                         code="request_too_large")
    length = headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise too_large
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ApiError(499, "client disconnected", code="client_disconnected")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _send(send: Any, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class _Exchange:
    """What becomes of one request: filled in as it goes, written to the log at the end."""

    __slots__ = ("caller", "decision", "error", "fields", "request", "started", "status",
                 "ts_ms", "upstream_seconds", "withheld")

    def __init__(self, request: ParsedRequest, caller: Caller, ts_ms: int, started: float) -> None:
        self.request = request
        self.caller = caller
        self.ts_ms = ts_ms
        self.started = started
        self.decision: Decision | None = None
        self.status = 0
        self.fields: dict[str, Any] = {}
        self.error: str | None = None
        self.upstream_seconds = 0.0
        self.withheld = 0


class ProxyEndpoint:
    """``POST /v1/chat/completions`` (``api="openai"``) or ``POST /v1/messages``."""

    def __init__(self, gateway: Gateway, api: Api, path: str) -> None:
        self.gateway = gateway
        self.api = api
        self.path = path
        self.parse = _PARSERS[api]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        started = time.perf_counter()
        ts_ms = time.time_ns() // 1_000_000
        gw = self.gateway
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            body = await read_body(receive, headers, gw.config.max_body_bytes)
            peer = scope.get("client")
            caller = gw.identifier.identify(headers, peer[0] if peer else None)
            try:
                obj = orjson.loads(body)
            except orjson.JSONDecodeError as exc:
                raise ApiError(400, f"The request body is not valid JSON: {exc}",
                               code="invalid_json") from exc
            request = self.parse(obj)
            if request.model not in gw.models:
                raise ApiError(400, f"The model '{request.model}' does not exist or is not "
                               f"served here; GET /v1/models lists the models.",
                               code="model_not_found", param="model")
        except ApiError as exc:
            gw.metrics.rejected.labels(self.api, exc.code).inc()
            if exc.status != 499:
                await _send(send, exc.status, error_body(self.api, exc), _JSON)
            return
        exchange = _Exchange(request, caller, ts_ms, started)
        try:
            await self._handle(exchange, body, headers, send, receive)
        finally:
            self._finish(exchange)

    async def _handle(self, ex: _Exchange, body: bytes, headers: dict[str, str], send: Any,
                      receive: Any) -> None:
        gw = self.gateway
        account = ex.caller.account
        ex.decision = decision = gw.decide(account, ex.ts_ms)
        try:
            self._refuse_if_decided(decision, account.account_id)
            estimate = estimate_tokens(ex.request.prompt_chars)
            charges = gw.charges(account, decision, estimate)
            if charges:
                wait = await self._take(charges, ex)
                if wait > 0:
                    retry = max(1, round(wait))
                    raise ApiError(429, f"Rate limit reached for account {account.account_id}; "
                                   f"retry after {retry} s.", code="rate_limit_exceeded",
                                   headers={"retry-after": str(retry)})
            up_start = time.perf_counter()
            try:
                reply = await gw.upstream.post(self.path, body, api=self.api, client_headers=headers)
            finally:
                ex.upstream_seconds = time.perf_counter() - up_start
            withhold = decision.enforced == "withhold_reasoning"
            if ex.request.stream and reply.status == 200:
                await self._stream(ex, reply, send, receive, withhold)
            else:
                await self._whole(ex, reply, send, withhold)
            self._settle_tokens(charges, estimate, ex)
        except ApiError as exc:
            ex.status, ex.error = exc.status, exc.code
            extra = [(k.encode(), v.encode()) for k, v in exc.headers.items()]
            await _send(send, exc.status, error_body(self.api, exc), _JSON + extra)
        except UpstreamTimeout as exc:
            await self._upstream_failed(ex, send, 504, "timeout", str(exc))
        except UpstreamError as exc:
            await self._upstream_failed(ex, send, 502, "unreachable", str(exc))

    async def _take(self, charges: list[Any], ex: _Exchange) -> float:
        """Seconds to wait (0: admitted). A failing state store admits: the limiter fails
        open rather than take the API down with it; the failure is counted and logged."""
        try:
            return await self.gateway.state.take(charges)
        except StateStoreError as exc:
            self.gateway.metrics.state_errors.inc()
            ex.error = f"state_store: {exc}"
            return 0.0

    def _settle_tokens(self, charges: list[Any], estimate: int, ex: _Exchange) -> None:
        """Owe the token buckets what the exchange used beyond the admission estimate."""
        tokens = [c for c in charges if c.key.endswith(":tok")]
        if not tokens:
            return
        used = ex.fields.get("input_tokens") or estimate
        used += ex.fields.get("output_tokens") or estimate_tokens(len(
            ex.fields.get("response") or ""))
        if used > estimate:
            self.gateway.owe_tokens([BucketCharge(c.key, c.limit, used - estimate)
                                     for c in tokens])

    def _refuse_if_decided(self, decision: Decision, account_id: str) -> None:
        if decision.enforced == "block":
            raise ApiError(403, f"Account {account_id} is suspended for violating the usage "
                           "policy (automated extraction of model outputs). Contact support "
                           "to appeal.", code="account_blocked")
        if decision.enforced == "require_verification":
            url = self.gateway.config.verification_url
            raise ApiError(403, f"Account {account_id} must verify its identity before making "
                           f"more requests. Complete verification at {url}; requests are "
                           "accepted again as soon as it is recorded.",
                           code="verification_required")

    async def _upstream_failed(self, ex: _Exchange, send: Any, status: int, kind: str,
                               message: str) -> None:
        self.gateway.metrics.upstream_errors.labels(self.api, kind).inc()
        ex.status, ex.error = status, f"upstream_{kind}: {message}"
        error = ApiError(status, "The upstream model service " + (
            "timed out." if kind == "timeout" else "is unavailable.") + " Retry later.",
            code=f"upstream_{kind}")
        await _send(send, status, error_body(self.api, error), _JSON)

    async def _whole(self, ex: _Exchange, reply: UpstreamReply, send: Any, withhold: bool) -> None:
        up_start = time.perf_counter() - ex.upstream_seconds
        data = await reply.read()
        ex.upstream_seconds = time.perf_counter() - up_start
        ex.status = reply.status
        if reply.status >= 500:
            self.gateway.metrics.upstream_errors.labels(self.api, "status_5xx").inc()
        if reply.status == 200 and "json" in reply.content_type:
            try:
                parsed = orjson.loads(data)
            except orjson.JSONDecodeError:
                parsed = None
            if isinstance(parsed, dict):
                if withhold:
                    withhold_fn = anthropic_withhold if self.api == ANTHROPIC else openai_withhold
                    ex.withheld = withhold_fn(parsed, self.gateway.summary)
                    if ex.withheld:
                        data = orjson.dumps(parsed)
                read = (anthropic_response_fields if self.api == ANTHROPIC
                        else openai_response_fields)
                ex.fields = read(parsed)
        elif reply.status >= 400:
            ex.error = "upstream_status"
        content_type = (reply.content_type or "application/json").encode("latin-1")
        await _send(send, reply.status, data, [(b"content-type", content_type)])

    async def _stream(self, ex: _Exchange, reply: UpstreamReply, send: Any, receive: Any,
                      withhold: bool) -> None:
        watcher = stream_watcher(self.api, self.gateway.summary if withhold else None)
        up_start = time.perf_counter() - ex.upstream_seconds
        ex.status = 200

        headers = _SSE if "event-stream" in reply.content_type else [
            (b"content-type", reply.content_type.encode("latin-1"))]

        async def pump() -> None:
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            async for chunk in reply.chunks():
                out = watcher.feed(chunk)
                if out:
                    await send({"type": "http.response.body", "body": out, "more_body": True})
            ex.upstream_seconds = time.perf_counter() - up_start
            await send({"type": "http.response.body", "body": watcher.finish()})

        async def disconnected() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        pumping = asyncio.ensure_future(pump())
        listening = asyncio.ensure_future(disconnected())
        try:
            done, _ = await asyncio.wait((pumping, listening), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (pumping, listening):
                task.cancel()
            await asyncio.gather(pumping, listening, return_exceptions=True)
            reply.close()
            ex.fields = watcher.fields
            ex.withheld = watcher.withheld_chars
        if pumping not in done:
            ex.status, ex.error = 499, "client_disconnected"
            ex.upstream_seconds = time.perf_counter() - up_start
            self.gateway.metrics.client_disconnects.labels(self.api).inc()
            return
        failure = pumping.exception()
        if isinstance(failure, UpstreamError):
            # The response has started: end it where the upstream broke off.
            kind = "timeout" if isinstance(failure, UpstreamTimeout) else "unreachable"
            self.gateway.metrics.upstream_errors.labels(self.api, kind).inc()
            ex.status, ex.error = 502, f"upstream_{kind} mid-stream: {failure}"
            ex.upstream_seconds = time.perf_counter() - up_start
            await send({"type": "http.response.body", "body": b""})
        elif failure is not None:
            raise failure

    def _finish(self, ex: _Exchange) -> None:
        gw = self.gateway
        request, caller, decision = ex.request, ex.caller, ex.decision
        account = caller.account
        total = time.perf_counter() - ex.started
        metrics = gw.metrics
        if ex.upstream_seconds:
            metrics.upstream_latency.labels(self.api).observe(ex.upstream_seconds)
        metrics.added_latency.labels(self.api).observe(max(0.0, total - ex.upstream_seconds))
        metrics.responses.labels(self.api, str(ex.status)).inc()
        if decision is not None:
            metrics.requests.labels(self.api, decision.action, decision.rule or "",
                                    decision.verdict or "", "true" if decision.shadow else "false"
                                    ).inc()
        if ex.withheld:
            metrics.reasoning_withheld.labels(self.api).inc(ex.withheld)
        gw.scorer.submit(account.account_id, ex.ts_ms, request.messages, request.system,
                         request.tools, request.has_image)
        record: dict[str, Any] = {
            "request_id": gw.request_id(), "ts": ex.ts_ms, "account_id": account.account_id,
            "model": request.model, "messages": request.messages, "status": ex.status,
            "api_key_id": caller.api_key_id, "api": self.api, "stream": request.stream,
            "added_ms": round((total - ex.upstream_seconds) * 1000, 3),
            "upstream_ms": round(ex.upstream_seconds * 1000, 3),
        }
        optional = {"system": request.system, "org_id": account.org_id,
                    "account_tier": account.tier, "payment_fingerprint": account.payment_fingerprint,
                    "ip": caller.ip, "user_agent": caller.user_agent, "tools": request.tools,
                    "error": ex.error, **ex.fields}
        record.update((k, v) for k, v in optional.items() if v is not None)
        if account.listed:
            record["verified"] = account.verified
        if request.has_image:
            record["has_image"] = True
        if decision is not None and (decision.rule or decision.verdict):
            record["gateway_action"] = decision.action
            record["gateway_rule"] = decision.rule
            record["gateway_shadow"] = decision.shadow
            record["watchlist_verdict"] = decision.verdict
        if ex.withheld:
            record["reasoning_withheld_chars"] = ex.withheld
        gw.write_log(record)
