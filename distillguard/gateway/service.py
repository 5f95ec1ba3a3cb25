"""The gateway's parts wired together: identity, policy, limits, scoring, log, metrics.

``proxy.py`` drives one request through them; ``app.py`` puts them behind HTTP.
"""

from __future__ import annotations

import itertools
import os
import time
from pathlib import Path

from distillguard.errors import StateStoreError
from distillguard.gateway.account_window import WindowStats
from distillguard.gateway.config import AccountInfo, GatewayConfig, Limits
from distillguard.gateway.exchange_log import ExchangeLogWriter
from distillguard.gateway.identity import Identifier
from distillguard.gateway.metrics import GatewayMetrics
from distillguard.gateway.otlp_export import SpanExporter
from distillguard.gateway.output_safeguards import OutputSafeguards
from distillguard.gateway.periodic import Periodic
from distillguard.gateway.policy import Decision, decide
from distillguard.gateway.scoring import Scorer, WindowRow
from distillguard.gateway.state import MemoryState, StateStore
from distillguard.gateway.token_bucket import BucketCharge
from distillguard.gateway.upstream import UpstreamClient
from distillguard.gateway.watchlist import Watchlist
from distillguard.safeguards.plan import SafeguardPolicy, load_safeguard_policy

__all__ = ["SETTLE_SECONDS", "Gateway"]

# Tokens used beyond the admission estimate are charged this often.
SETTLE_SECONDS = 0.1


class Gateway:
    """One gateway replica. Create it anywhere; ``start`` and ``close`` inside the event loop."""

    def __init__(self, config: GatewayConfig, *, upstream_url: str, log_dir: str | Path | None,
                 state: StateStore | None = None, findings: str | Path | None = None,
                 upstream_api_key: str | None = None,
                 safeguards: SafeguardPolicy | None = None, watermark_secret: str | None = None,
                 canary_secret: str | None = None) -> None:
        """``safeguards``: the safeguards file's policy (None: ``config.safeguards_path`` or
        the packaged default); the secrets: None, the safeguards that need them are off."""
        self.config = config
        self.identifier = Identifier(config.keys, unknown_keys=config.unknown_keys,
                                     trusted_proxies=config.trusted_proxies)
        self.upstream = UpstreamClient(upstream_url, api_key=upstream_api_key,
                                       connect_timeout=config.connect_timeout,
                                       read_timeout=config.read_timeout,
                                       max_connections=config.max_connections,
                                       max_answer_bytes=config.max_answer_bytes)
        self.log = ExchangeLogWriter(log_dir, flush_seconds=config.log_flush_seconds,
                                     rotate_bytes=config.log_rotate_bytes,
                                     rotate_seconds=config.log_rotate_seconds) if log_dir else None
        self.spans = SpanExporter(config.otlp) if config.otlp.endpoint else None
        self.state: StateStore = state or MemoryState(hours=config.window_hours)
        self.watchlist = Watchlist(findings or config.watchlist_path,
                                   poll_seconds=config.watchlist_poll_seconds)
        self.safeguards = OutputSafeguards(
            self.watchlist, mode=config.safeguards_mode,
            policy=safeguards or load_safeguard_policy(config.safeguards_path),
            watermark_secret=watermark_secret, canary_secret=canary_secret)
        self.scorer = Scorer(self._on_scored, interval=config.batch_interval,
                             batch_max=config.batch_max, worker=config.scoring_worker,
                             nice=config.scoring_worker_nice,
                             template_memory=config.template_memory)
        self.metrics = GatewayMetrics()
        self.models = frozenset(config.models)
        self.needs_window = any(rule.needs_window for rule in config.rules)
        self._base_limits = any(limit is not None for limits in (
            config.limits_account, config.limits_org) for limit in (limits.requests,
                                                                   limits.tokens))
        self._token_debts: dict[str, BucketCharge] = {}
        self._settler = Periodic(SETTLE_SECONDS, self.settle_tokens)
        self._ids = itertools.count(1)
        self._id_prefix = f"gw-{os.getpid():x}-{time.time_ns() // 1_000_000:x}-"

    async def start(self) -> None:
        """Start every part; if one fails, stop those already started and re-raise."""
        try:
            await self.upstream.start()
            await self.state.start()
            await self.scorer.start()
            self.watchlist.start()
            self._settler.start()
            if self.log is not None:
                self.log.start()
            if self.spans is not None:
                await self.spans.start()
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        await self._settler.stop()
        await self.settle_tokens()
        await self.watchlist.close()
        await self.scorer.close()
        await self.upstream.close()
        await self.state.close()
        if self.log is not None:
            await self.log.close()
        if self.spans is not None:
            await self.spans.close()

    def request_id(self) -> str:
        return f"{self._id_prefix}{next(self._ids)}"

    def window(self, account_id: str, now_ms: int) -> WindowStats | None:
        return self.state.window(account_id, now_ms) if self.needs_window else None

    def decide(self, account: AccountInfo, now_ms: int) -> Decision:
        entry = self.watchlist.get(account.account_id)
        return decide(self.config, account, entry, self.window(account.account_id, now_ms))

    def charges(self, account: AccountInfo, decision: Decision, tokens: float
                ) -> list[BucketCharge]:
        """The buckets a request must fit: the base limits, and the throttle's when throttled."""
        if not self._base_limits and decision.enforced != "throttle":
            return []
        plan: list[tuple[str, Limits]] = [(f"acct:{account.account_id}", self.config.limits_account)]
        if account.org_id:
            plan.append((f"org:{account.org_id}", self.config.limits_org))
        if decision.enforced == "throttle":
            plan.append((f"thr-acct:{account.account_id}", self.config.throttle_account))
            if account.org_id:
                plan.append((f"thr-org:{account.org_id}", self.config.throttle_org))
        out = []
        for key, limits in plan:
            if limits.requests is not None:
                out.append(BucketCharge(key + ":req", limits.requests, 1.0))
            if limits.tokens is not None:
                out.append(BucketCharge(key + ":tok", limits.tokens, float(tokens)))
        return out

    def owe_tokens(self, charges: list[BucketCharge]) -> None:
        """Tokens used beyond what admission charged; settled in one call every
        ``SETTLE_SECONDS`` (a call per request would double the limiter's Redis traffic)."""
        for c in charges:
            owed = self._token_debts.get(c.key)
            self._token_debts[c.key] = BucketCharge(c.key, c.limit, c.cost + (owed.cost if owed
                                                                            else 0.0))

    async def settle_tokens(self) -> None:
        if not self._token_debts:
            return
        debts, self._token_debts = list(self._token_debts.values()), {}
        try:
            await self.state.charge(debts)
        except StateStoreError:
            self.metrics.state_errors.inc()

    async def _on_scored(self, rows: list[WindowRow]) -> None:
        self.metrics.scored.inc(sum(counts["requests"] for _, _, counts in rows))
        try:
            await self.state.record(rows)
        except StateStoreError:
            self.metrics.state_errors.inc()
