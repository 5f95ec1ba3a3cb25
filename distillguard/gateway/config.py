"""The gateway's configuration (``gateway/data/gateway.yaml``) as typed values.

A file that does not fit fails when it is loaded, with a one-line
``RuleValidationError`` naming the file, the key and what is allowed, never
later on a request.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from distillguard.gateway.account_window import SHARES
from distillguard.validation import (
    FLAG,
    TEXT,
    Interval,
    ListOf,
    MappingOf,
    Nullable,
    Options,
    Section,
    merge_sections,
    read_rules_file,
    validate,
)

__all__ = [
    "ACTIONS",
    "SCHEMA",
    "VERDICTS",
    "AccountInfo",
    "Action",
    "BucketLimit",
    "GatewayConfig",
    "Limits",
    "OtlpExport",
    "Rule",
    "load_config",
]

Action = Literal["allow", "throttle", "require_verification", "block", "withhold_reasoning"]
ACTIONS: tuple[str, ...] = ("allow", "throttle", "require_verification", "block",
                            "withhold_reasoning")
VERDICTS = ("extraction", "review")


@dataclass(frozen=True)
class AccountInfo:
    """What the key table says about an account."""

    account_id: str
    org_id: str | None = None
    tier: str | None = None
    verified: bool = False
    payment_fingerprint: str | None = None
    listed: bool = True  # in the key table (False: derived from an unknown key)


@dataclass(frozen=True)
class BucketLimit:
    """A token bucket: ``per_minute`` refill, ``burst_seconds`` of it as capacity."""

    per_minute: float
    burst_seconds: float = 60.0

    @property
    def rate(self) -> float:
        return self.per_minute / 60.0

    @property
    def capacity(self) -> float:
        return max(1.0, self.rate * self.burst_seconds)


@dataclass(frozen=True)
class Limits:
    """Request and token buckets for one kind of owner (account or org)."""

    requests: BucketLimit | None = None
    tokens: BucketLimit | None = None


@dataclass(frozen=True)
class OtlpExport:
    """Where and how the gateway sends its exchanges as GenAI spans (``otlp`` section)."""

    endpoint: str | None = None
    protocol: Literal["http/protobuf", "http/json"] = "http/protobuf"
    service_name: str = "distillguard-gateway"
    flush_seconds: float = 1.0
    max_batch_spans: int = 512
    max_queue_spans: int = 16384
    timeout_seconds: float = 10.0


@dataclass(frozen=True)
class Rule:
    name: str
    action: Action
    shadow: bool = False
    verdicts: frozenset[str] | None = None
    in_campaign: bool | None = None
    tiers: frozenset[str] | None = None
    verified: bool | None = None
    min_requests: int = 0
    shares_at_least: dict[str, float] = field(default_factory=dict)
    requests_per_minute_at_least: float | None = None
    hours_active_at_least: int | None = None

    @property
    def needs_window(self) -> bool:
        return bool(self.min_requests or self.shares_at_least
                    or self.requests_per_minute_at_least or self.hours_active_at_least)


@dataclass(frozen=True)
class GatewayConfig:
    models: tuple[str, ...]
    max_body_bytes: int
    max_header_bytes: int
    max_header_count: int
    unknown_content_parts: Literal["reject", "allow"]
    connect_timeout: float
    read_timeout: float
    max_connections: int
    max_answer_bytes: int
    upstream_api_key_env: str | None
    unknown_keys: Literal["derive", "reject"]
    keys: dict[str, AccountInfo]
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    watchlist_path: str | None
    watchlist_poll_seconds: float
    batch_interval: float
    batch_max: int
    scoring_worker: Literal["process", "inline"]
    scoring_worker_nice: int
    template_memory: int
    window_hours: int
    window_refresh_seconds: float
    redis_timeout: float
    redis_retry_seconds: float
    log_flush_seconds: float
    log_rotate_bytes: int
    log_rotate_seconds: float
    otlp: OtlpExport
    limits_account: Limits
    limits_org: Limits
    throttle_account: Limits
    throttle_org: Limits
    verification_url: str
    safeguards_path: str | None
    safeguards_mode: Literal["enforce", "shadow", "off"]
    watermark_secret_env: str | None
    canary_secret_env: str | None
    mode: Literal["enforce", "shadow"]
    rules: tuple[Rule, ...]


class _Network:
    """An IP network (``10.0.0.0/8``, ``::1/128``) or address."""

    def accepts(self, value: Any) -> bool:
        if not isinstance(value, str):
            return False
        try:
            ipaddress.ip_network(value)
        except ValueError:
            return False
        return True

    def __str__(self) -> str:
        return "an IP network such as 10.0.0.0/8"


_POSITIVE = Interval(float, 0, None, closed="neither")
_OPTIONAL_LIMIT = Nullable(_POSITIVE)
_LIMITS = Nullable(Section({"requests_per_minute": _OPTIONAL_LIMIT,
                            "tokens_per_minute": _OPTIONAL_LIMIT, "burst_seconds": _POSITIVE},
                           optional=frozenset({"requests_per_minute", "tokens_per_minute",
                                               "burst_seconds"})))
_WHEN = Section({
    "verdict": ListOf(Options(VERDICTS)),
    "in_campaign": FLAG,
    "tiers": ListOf(TEXT),
    "verified": FLAG,
    "min_requests": Interval(int, 0, None),
    "shares_at_least": MappingOf(Options(SHARES), Interval(float, 0, 1)),
    "requests_per_minute_at_least": Interval(float, 0, None),
    "hours_active_at_least": Interval(int, 0, None),
}, optional=frozenset({"verdict", "in_campaign", "tiers", "verified", "min_requests",
                       "shares_at_least", "requests_per_minute_at_least",
                       "hours_active_at_least"}))
_RULE = Section({"name": TEXT, "action": Options(ACTIONS), "shadow": FLAG,
                 "when": Nullable(_WHEN)}, optional=frozenset({"shadow", "when"}))
_KEY = Section({"account_id": TEXT, "org_id": Nullable(TEXT), "tier": Nullable(TEXT),
                "verified": FLAG, "payment_fingerprint": Nullable(TEXT)},
               optional=frozenset({"org_id", "tier", "verified", "payment_fingerprint"}))
SCHEMA = Section({
    "version": Options((1,)),
    "models": ListOf(TEXT),
    "max_body_bytes": Interval(int, 1, None),
    "max_header_bytes": Interval(int, 1024, None),
    "max_header_count": Interval(int, 8, None),
    "content_parts": Section({"unknown": Options(("reject", "allow"))}),
    "upstream": Section({"connect_timeout_seconds": Interval(float, 0, None),
                         "read_timeout_seconds": Interval(float, 0, None),
                         "max_connections": Interval(int, 1, None),
                         "max_answer_bytes": Interval(int, 1024, None),
                         "api_key_env": Nullable(TEXT)}),
    "identity": Section({"unknown_keys": Options(("derive", "reject")),
                         "keys": Nullable(MappingOf(TEXT, _KEY)),
                         "trusted_proxies": Nullable(ListOf(_Network()))}),
    "watchlist": Section({"path": Nullable(TEXT), "poll_seconds": Interval(float, 0.01, None)}),
    "scoring": Section({"batch_interval_ms": Interval(float, 1, None),
                        "batch_max": Interval(int, 1, None),
                        "worker": Options(("process", "inline")),
                        "worker_nice": Interval(int, 0, 19),
                        "template_memory": Interval(int, 1, None)}),
    "window": Section({"hours": Interval(int, 1, None),
                       "refresh_seconds": Interval(float, 0, None)}),
    "redis": Section({"timeout_seconds": Interval(float, 0.001, None),
                      "retry_seconds": Interval(float, 0, None)}),
    "log": Section({"flush_seconds": Interval(float, 0.01, None),
                    "rotate_bytes": Interval(int, 1, None),
                    "rotate_seconds": Interval(float, 1, None)}),
    "otlp": Section({"endpoint": Nullable(TEXT),
                     "protocol": Options(("http/protobuf", "http/json")),
                     "service_name": TEXT,
                     "flush_seconds": Interval(float, 0.01, None),
                     "max_batch_spans": Interval(int, 1, None),
                     "max_queue_spans": Interval(int, 1, None),
                     "timeout_seconds": Interval(float, 0.01, None)}),
    "limits": Nullable(Section({"account": _LIMITS, "org": _LIMITS},
                               optional=frozenset({"account", "org"}))),
    "throttle": Nullable(Section({"account": _LIMITS, "org": _LIMITS},
                                 optional=frozenset({"account", "org"}))),
    "verification_url": TEXT,
    "safeguards": Section({"path": Nullable(TEXT), "mode": Options(("enforce", "shadow", "off")),
                           "watermark_secret_env": Nullable(TEXT),
                           "canary_secret_env": Nullable(TEXT)}),
    "mode": Options(("enforce", "shadow")),
    "rules": Nullable(ListOf(_RULE)),
})
"""What a gateway config may hold; ``load_config`` checks every file against it."""


def _limits(data: dict[str, Any] | None) -> Limits:
    if data is None:
        return Limits()
    burst = float(data.get("burst_seconds", 60.0))
    requests, tokens = data.get("requests_per_minute"), data.get("tokens_per_minute")
    return Limits(BucketLimit(float(requests), burst) if requests is not None else None,
                  BucketLimit(float(tokens), burst) if tokens is not None else None)


def _rule(data: dict[str, Any]) -> Rule:
    when = data.get("when") or {}
    return Rule(
        name=data["name"], action=data["action"], shadow=data.get("shadow", False),
        verdicts=frozenset(when["verdict"]) if "verdict" in when else None,
        in_campaign=when.get("in_campaign"),
        tiers=frozenset(when["tiers"]) if "tiers" in when else None,
        verified=when.get("verified"), min_requests=when.get("min_requests", 0),
        shares_at_least={k: float(v) for k, v in (when.get("shares_at_least") or {}).items()},
        requests_per_minute_at_least=when.get("requests_per_minute_at_least"),
        hours_active_at_least=when.get("hours_active_at_least"))


def _keys(data: dict[str, Any] | None) -> dict[str, AccountInfo]:
    return {str(key): AccountInfo(info["account_id"], info.get("org_id"), info.get("tier"),
                                  info.get("verified", False), info.get("payment_fingerprint"))
            for key, info in (data or {}).items()}


def _config(data: dict[str, Any]) -> GatewayConfig:
    upstream, identity, scoring = data["upstream"], data["identity"], data["scoring"]
    window, log, redis = data["window"], data["log"], data["redis"]
    limits, throttle = data["limits"] or {}, data["throttle"] or {}
    return GatewayConfig(
        models=tuple(data["models"]),
        max_body_bytes=data["max_body_bytes"],
        max_header_bytes=data["max_header_bytes"],
        max_header_count=data["max_header_count"],
        unknown_content_parts=data["content_parts"]["unknown"],
        connect_timeout=float(upstream["connect_timeout_seconds"]),
        read_timeout=float(upstream["read_timeout_seconds"]),
        max_connections=upstream["max_connections"],
        max_answer_bytes=upstream["max_answer_bytes"],
        upstream_api_key_env=upstream["api_key_env"],
        unknown_keys=identity["unknown_keys"], keys=_keys(identity["keys"]),
        trusted_proxies=tuple(ipaddress.ip_network(p) for p in identity["trusted_proxies"] or []),
        watchlist_path=data["watchlist"]["path"],
        watchlist_poll_seconds=float(data["watchlist"]["poll_seconds"]),
        batch_interval=scoring["batch_interval_ms"] / 1000,
        batch_max=scoring["batch_max"],
        scoring_worker=scoring["worker"],
        scoring_worker_nice=scoring["worker_nice"],
        template_memory=scoring["template_memory"],
        window_hours=window["hours"],
        window_refresh_seconds=float(window["refresh_seconds"]),
        redis_timeout=float(redis["timeout_seconds"]),
        redis_retry_seconds=float(redis["retry_seconds"]),
        log_flush_seconds=float(log["flush_seconds"]),
        log_rotate_bytes=log["rotate_bytes"],
        log_rotate_seconds=float(log["rotate_seconds"]),
        otlp=OtlpExport(endpoint=data["otlp"]["endpoint"], protocol=data["otlp"]["protocol"],
                        service_name=data["otlp"]["service_name"],
                        flush_seconds=float(data["otlp"]["flush_seconds"]),
                        max_batch_spans=data["otlp"]["max_batch_spans"],
                        max_queue_spans=data["otlp"]["max_queue_spans"],
                        timeout_seconds=float(data["otlp"]["timeout_seconds"])),
        limits_account=_limits(limits.get("account")),
        limits_org=_limits(limits.get("org")),
        throttle_account=_limits(throttle.get("account")),
        throttle_org=_limits(throttle.get("org")),
        verification_url=data["verification_url"],
        safeguards_path=data["safeguards"]["path"],
        safeguards_mode=data["safeguards"]["mode"],
        watermark_secret_env=data["safeguards"]["watermark_secret_env"],
        canary_secret_env=data["safeguards"]["canary_secret_env"],
        mode=data["mode"],
        rules=tuple(_rule(r) for r in data["rules"] or []))


def load_config(path: str | Path | None = None, *,
                overrides: dict[str, Any] | None = None) -> GatewayConfig:
    """Load the packaged default config, with ``path``'s sections and then ``overrides``
    merged over it (one level deep: a file names only what it changes; ``rules``
    replaces the default rules whole).

    Raises ``RuleValidationError`` (one line: file, key, what is allowed) for a
    missing or unreadable file, text that is not YAML, an unknown key or a value
    of the wrong type or out of range.
    """
    data, origin = read_rules_file(None, what="gateway config", package="distillguard.gateway",
                                   packaged="data/gateway.yaml")
    if path is not None:
        own, origin = read_rules_file(path, what="gateway config",
                                      package="distillguard.gateway", packaged="data/gateway.yaml")
        data = merge_sections(data, own)
    if overrides:
        data = merge_sections(data, overrides)
        origin += " with overrides"
    return _config(validate(data, SCHEMA, origin))
