"""One request through the gateway, as a plain ASGI endpoint (the hot path).

read body (413) -> identify (401) -> parse (400) -> policy (403) -> limits (429)
-> safeguards (accounts with a verdict only) -> forward (502/504) -> answer (rewritten
when reasoning is withheld or a safeguard applies) -> log -> metrics.
Every parsed request is logged and queued for scoring, whatever became of it;
requests that cannot be parsed (no model, no messages) are not exchanges the
log format can hold and are only counted (``distillguard_gateway_rejected``).
An upstream answer that is not the API's format (a 200 that is not JSON, a
stream that is not server-sent events of JSON) is an upstream failure: 502 when
nothing was sent yet, else the stream ends with an error event.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import orjson

from distillguard.errors import (
    ApiError,
    StateStoreError,
    UpstreamError,
    UpstreamMalformed,
    UpstreamTimeout,
)
from distillguard.gateway.anthropic_format import (
    anthropic_map_answers,
    anthropic_request,
    anthropic_response_fields,
    anthropic_withhold,
)
from distillguard.gateway.api_errors import ANTHROPIC, Api, error_body, error_event
from distillguard.gateway.exchange_log import Exchange
from distillguard.gateway.identity import Caller, request_headers
from distillguard.gateway.openai_format import (
    openai_map_answers,
    openai_request,
    openai_response_fields,
    openai_withhold,
)
from distillguard.gateway.output_safeguards import OutputGuard, Rewrite
from distillguard.gateway.parsed_request import ParsedRequest, estimate_tokens
from distillguard.gateway.policy import Decision
from distillguard.gateway.service import Gateway
from distillguard.gateway.streams import stream_watcher
from distillguard.gateway.token_bucket import BucketCharge
from distillguard.gateway.upstream import UpstreamReply
from distillguard.safeguards.canaries import add_decoy_tool, append_signature

__all__ = ["ProxyEndpoint", "read_body"]

_JSON = [(b"content-type", b"application/json")]
_SSE = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
_PARSERS: dict[str, Callable[..., ParsedRequest]] = {"openai": openai_request,
                                                      "anthropic": anthropic_request}


async def read_body(receive: Any, headers: dict[str, str], limit: int) -> bytes:
    """The request body; ``ApiError`` 413 as soon as it is known to pass ``limit`` bytes."""
    length = headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise _too_large(limit)
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ApiError(499, "client disconnected", code="client_disconnected")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        if not message.get("more_body", False):
            return b"".join(chunks) + chunk if chunks else chunk
        chunks.append(chunk)


def _too_large(limit: int) -> ApiError:
    return ApiError(413, f"Request body is larger than the limit of {limit} bytes.",
                    code="request_too_large")


async def _send(send: Any, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _failure_kind(failure: UpstreamError) -> tuple[str, int]:
    """The metric label and the status of an upstream failure."""
    if isinstance(failure, UpstreamTimeout):
        return "timeout", 504
    if isinstance(failure, UpstreamMalformed):
        return "malformed", 502
    return "unreachable", 502


_FAILURE_WORDS = {"timeout": "timed out", "malformed": "sent an answer that is not in the "
                  "API's format", "unreachable": "is unavailable"}


class ProxyEndpoint:
    """``POST /v1/chat/completions`` (``api="openai"``) or ``POST /v1/messages``."""

    def __init__(self, gateway: Gateway, api: Api, path: str) -> None:
        self.gateway = gateway
        self.api = api
        self.path = path
        self.parser = _PARSERS[api]
        self.allow_unknown_parts = gateway.config.unknown_content_parts == "allow"

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        started = time.perf_counter()
        ts_ms = time.time_ns() // 1_000_000
        gw = self.gateway
        try:
            headers = request_headers(scope["headers"])
            body = await read_body(receive, headers, gw.config.max_body_bytes)
            caller = self._identify(headers, scope)
            request = self._parse(body)
        except ApiError as exc:
            gw.metrics.rejected.labels(self.api, exc.code).inc()
            if exc.status != 499:
                await self._refuse(send, exc)
            return
        exchange = Exchange(request, caller, ts_ms, started)
        try:
            await self._handle(exchange, body, headers, send, receive)
        finally:
            self._finish(exchange)

    # the steps, in order

    def _identify(self, headers: dict[str, str], scope: dict[str, Any]) -> Caller:
        peer = scope.get("client")
        return self.gateway.identifier.identify(headers, peer[0] if peer else None)

    def _parse(self, body: bytes) -> ParsedRequest:
        try:
            obj = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise ApiError(400, f"The request body is not valid JSON: {exc}",
                           code="invalid_json") from exc
        request = self.parser(obj, allow_unknown_parts=self.allow_unknown_parts)
        if request.model not in self.gateway.models:
            raise ApiError(400, f"The model '{request.model}' does not exist or is not "
                           f"served here; GET /v1/models lists the models.",
                           code="model_not_found", param="model")
        return request

    async def _handle(self, ex: Exchange, body: bytes, headers: dict[str, str], send: Any,
                      receive: Any) -> None:
        try:
            decision = self._apply_policy(ex)
            charges, estimate = await self._apply_limits(ex, decision)
            guard = ex.guard = self._safeguards(ex, decision)
            if guard is not None and guard.plan.decoy_tool and not guard.shadow:
                body = self._add_decoy(ex, guard, body)
            reply = await self._forward(ex, body, headers,
                                        self.gateway.safeguards.request_headers(guard))
            rewrite = self.gateway.safeguards.rewrite(
                guard, decision.enforced == "withhold_reasoning")
            if ex.request.stream and reply.status == 200:
                await self._stream(ex, reply, send, receive, rewrite)
            else:
                await self._whole(ex, reply, send, rewrite)
            self._settle_tokens(charges, estimate, ex)
        except ApiError as exc:
            ex.status, ex.error = exc.status, exc.code
            await self._refuse(send, exc)
        except UpstreamError as exc:
            await self._upstream_failed(ex, send, exc)

    def _apply_policy(self, ex: Exchange) -> Decision:
        """The policy's decision for the account; 403 when it blocks or asks for
        verification (and it is not only shadowed)."""
        account = ex.caller.account
        ex.decision = decision = self.gateway.decide(account, ex.ts_ms)
        if decision.enforced == "block":
            raise ApiError(403, f"Account {account.account_id} is suspended for violating the "
                           "usage policy (automated extraction of model outputs). Contact "
                           "support to appeal.", code="account_blocked")
        if decision.enforced == "require_verification":
            url = self.gateway.config.verification_url
            raise ApiError(403, f"Account {account.account_id} must verify its identity before "
                           f"making more requests. Complete verification at {url}; requests "
                           "are accepted again as soon as it is recorded.",
                           code="verification_required")
        return decision

    async def _apply_limits(self, ex: Exchange, decision: Decision
                            ) -> tuple[list[BucketCharge], int]:
        """Take the request (and its estimated tokens) from the account's and the org's
        buckets; 429 with ``Retry-After`` when one is empty."""
        account = ex.caller.account
        estimate = estimate_tokens(ex.request.prompt_chars)
        charges = self.gateway.charges(account, decision, estimate)
        if charges:
            wait = await self._take(charges, ex)
            if wait > 0:
                retry = max(1, round(wait))
                raise ApiError(429, f"Rate limit reached for account {account.account_id}; "
                               f"retry after {retry} s.", code="rate_limit_exceeded",
                               headers={"retry-after": str(retry)})
        return charges, estimate

    async def _take(self, charges: list[BucketCharge], ex: Exchange) -> float:
        """Seconds to wait (0: admitted). A failing state store admits: the limiter fails
        open rather than take the API down with it; the failure is counted and logged."""
        try:
            return await self.gateway.state.take(charges)
        except StateStoreError as exc:
            self.gateway.metrics.state_errors.inc()
            ex.error = f"state_store: {exc}"
            return 0.0

    def _safeguards(self, ex: Exchange, decision: Decision) -> OutputGuard | None:
        """The account's output safeguards; None (at the cost of one check) for an account
        without a verdict."""
        if decision.verdict is None:
            return None

        def request_id() -> str:
            ex.request_id = ex.request_id or self.gateway.request_id()
            return ex.request_id
        return self.gateway.safeguards.guard(ex.caller.account.account_id, decision, request_id,
                                             shadow_all=self.gateway.config.mode == "shadow")

    def _add_decoy(self, ex: Exchange, guard: OutputGuard, body: bytes) -> bytes:
        """The body with the group's decoy tool in its tool list (a request without
        tools is sent as it came)."""
        assert guard.plan.canary is not None
        if not add_decoy_tool(ex.request.body, self.api, guard.plan.canary):
            return body
        guard.applied.append("decoy_tool")
        return orjson.dumps(ex.request.body)

    async def _forward(self, ex: Exchange, body: bytes, headers: dict[str, str],
                       extra_headers: tuple[tuple[str, str], ...] = ()) -> UpstreamReply:
        """The body to the upstream (as it came, or with a decoy tool), with the
        credential the caller was identified by and the safeguards' headers."""
        up_start = time.perf_counter()
        try:
            return await self.gateway.upstream.post(self.path, body, api=self.api,
                                                    client_headers=headers,
                                                    credential=ex.caller.credential,
                                                    whole=not ex.request.stream,
                                                    extra_headers=extra_headers)
        finally:
            ex.upstream_seconds = time.perf_counter() - up_start

    async def _whole(self, ex: Exchange, reply: UpstreamReply, send: Any,
                     rewrite: Rewrite | None) -> None:
        up_start = time.perf_counter() - ex.upstream_seconds
        data = await reply.read()
        ex.upstream_seconds = time.perf_counter() - up_start
        if reply.status == 200:
            try:
                parsed = orjson.loads(data)
            except orjson.JSONDecodeError:
                parsed = None
            if not isinstance(parsed, dict):
                raise UpstreamMalformed(
                    f"the upstream answered 200 with {len(data)} bytes of "
                    f"{reply.content_type or 'no content type'} that are not a JSON object")
            if rewrite is not None and self._rewrite_whole(ex, parsed, rewrite):
                data = orjson.dumps(parsed)
            read = anthropic_response_fields if self.api == ANTHROPIC else openai_response_fields
            ex.fields = read(parsed)
        elif reply.status >= 400:
            ex.error = "upstream_status"
            if reply.status >= 500:
                self.gateway.metrics.upstream_errors.labels(self.api, "status_5xx").inc()
        ex.status = reply.status
        content_type = (reply.content_type or "application/json").encode("latin-1")
        await _send(send, reply.status, data, [(b"content-type", content_type)])

    def _rewrite_whole(self, ex: Exchange, parsed: dict[str, Any], rewrite: Rewrite) -> bool:
        """Withhold reasoning, cut the answer, append the signature; True when the body
        changed."""
        anthropic = self.api == ANTHROPIC
        changed = False
        if rewrite.summary is not None:
            withhold_fn = anthropic_withhold if anthropic else openai_withhold
            ex.withheld = withhold_fn(parsed, rewrite.summary)
            changed = bool(ex.withheld)
        if rewrite.cut is not None:
            cut = (anthropic_map_answers(parsed, rewrite.cut) if anthropic
                   else openai_map_answers(parsed, rewrite.cut))
            self._applied(ex, "answer_only", cut)
            changed |= cut
        if rewrite.signature is not None:
            canary = rewrite.signature

            def sign(text: str) -> str:
                return append_signature(text, canary)
            signed = (anthropic_map_answers(parsed, sign, last_only=True) if anthropic
                      else openai_map_answers(parsed, sign))
            self._applied(ex, "signature", signed)
            changed |= signed
        return changed

    @staticmethod
    def _applied(ex: Exchange, what: str, done: bool) -> None:
        if done and ex.guard is not None:
            ex.guard.applied.append(what)

    async def _stream(self, ex: Exchange, reply: UpstreamReply, send: Any, receive: Any,
                      rewrite: Rewrite | None) -> None:
        """Pass the upstream's events on as they come (checked, and rewritten under
        ``rewrite``). The response starts with the first whole, valid event: an upstream
        failure before it is an error response, after it an error event ends the stream."""
        if "event-stream" not in reply.content_type:
            reply.close()
            raise UpstreamMalformed(f"the upstream answered a streamed request with "
                                    f"{reply.content_type or 'no content type'}, not "
                                    "text/event-stream")
        watcher = stream_watcher(self.api, rewrite, self.gateway.config.max_answer_bytes)
        up_start = time.perf_counter() - ex.upstream_seconds
        ex.status = 200
        began = False

        async def emit(data: bytes) -> None:
            nonlocal began
            if not began:
                await send({"type": "http.response.start", "status": 200, "headers": _SSE})
                began = True
            await send({"type": "http.response.body", "body": data, "more_body": True})

        async def pump() -> None:
            async for chunk in reply.chunks():
                if out := watcher.feed(chunk):
                    await emit(out)
                if watcher.failure is not None:
                    break
            else:
                if out := watcher.finish():
                    await emit(out)
            ex.upstream_seconds = time.perf_counter() - up_start
            if watcher.failure is None and not began:
                watcher.failure = "the stream ended without any event"
            if watcher.failure is not None:
                raise UpstreamMalformed(f"the upstream's stream broke: {watcher.failure}")
            await send({"type": "http.response.body", "body": b""})

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
            self._applied(ex, "answer_only", watcher.cut_applied)
            self._applied(ex, "signature", watcher.signed)
        if pumping not in done:
            ex.status, ex.error = 499, "client_disconnected"
            ex.upstream_seconds = time.perf_counter() - up_start
            self.gateway.metrics.client_disconnects.labels(self.api).inc()
            return
        failure = pumping.exception()
        if failure is None:
            if watcher.upstream_error is not None:
                ex.error = f"upstream_error_event: {watcher.upstream_error}"
            return
        if not isinstance(failure, UpstreamError) or not began:
            raise failure
        # The response has begun: end it with an error event where the upstream failed.
        kind, _ = _failure_kind(failure)
        self.gateway.metrics.upstream_errors.labels(self.api, kind).inc()
        ex.status, ex.error = 502, f"upstream_{kind} mid-stream: {failure}"
        ex.upstream_seconds = time.perf_counter() - up_start
        await send({"type": "http.response.body", "body": error_event(
            self.api, self._upstream_error(kind, 502)), "more_body": False})

    def _settle_tokens(self, charges: list[BucketCharge], estimate: int, ex: Exchange) -> None:
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

    # answers that are not the upstream's

    async def _refuse(self, send: Any, error: ApiError) -> None:
        extra = [(k.encode(), v.encode()) for k, v in error.headers.items()]
        await _send(send, error.status, error_body(self.api, error), _JSON + extra)

    @staticmethod
    def _upstream_error(kind: str, status: int) -> ApiError:
        return ApiError(status, f"The upstream model service {_FAILURE_WORDS[kind]}. "
                        "Retry later.", code=f"upstream_{kind}")

    async def _upstream_failed(self, ex: Exchange, send: Any, failure: UpstreamError) -> None:
        kind, status = _failure_kind(failure)
        self.gateway.metrics.upstream_errors.labels(self.api, kind).inc()
        ex.status, ex.error = status, f"upstream_{kind}: {failure}"
        await self._refuse(send, self._upstream_error(kind, status))

    def _finish(self, ex: Exchange) -> None:
        """Metrics, the scoring queue and the log line of an exchange, whatever became of it."""
        gw = self.gateway
        request, decision = ex.request, ex.decision
        total = time.perf_counter() - ex.started
        decided = None if decision is None else (
            decision.action, decision.rule or "", decision.verdict or "",
            "true" if decision.shadow else "false")
        gw.metrics.exchanges.exchange(self.api, ex.status, decided,
                                      max(0.0, total - ex.upstream_seconds), ex.upstream_seconds)
        if ex.withheld:
            gw.metrics.reasoning_withheld.labels(self.api).inc(ex.withheld)
        if ex.guard is not None:
            if ex.withheld and ex.guard.plan.reasoning != "keep":
                ex.guard.applied.append(f"reasoning_{ex.guard.plan.reasoning}")
            for what in ex.guard.applied if not ex.guard.shadow else ():
                gw.metrics.safeguards.labels(self.api, what).inc()
        gw.scorer.submit(ex.caller.account.account_id, ex.ts_ms, request.messages, request.system,
                         request.tools, request.has_image)
        if gw.log is not None or gw.spans is not None:
            record = ex.record(ex.request_id or gw.request_id(), total)
            if gw.log is not None:
                gw.log.write(record)
            if gw.spans is not None:
                gw.spans.write(record)
