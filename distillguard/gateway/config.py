"""The gateway's configuration (``gateway/data/gateway.yaml``) as typed values.

A file that does not fit fails when it is loaded, with a ``RuleValidationError``
naming the key, never later on a request.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from distillguard.errors import RuleValidationError

__all__ = [
    "ACTIONS",
    "SHARE_NAMES",
    "AccountInfo",
    "Action",
    "BucketLimit",
    "GatewayConfig",
    "Limits",
    "Rule",
    "load_config",
]

Action = Literal["allow", "throttle", "require_verification", "block", "withhold_reasoning"]
ACTIONS: tuple[str, ...] = ("allow", "throttle", "require_verification", "block",
                            "withhold_reasoning")
SHARE_NAMES = ("cot_elicitation", "grading", "data_generation", "safe_rewrite", "tool_use",
               "any_technique", "templated", "multi_turn")
_VERDICTS = frozenset({"extraction", "review"})


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
    limits_account: Limits
    limits_org: Limits
    throttle_account: Limits
    throttle_org: Limits
    verification_url: str
    summary_chars: int
    mode: Literal["enforce", "shadow"]
    rules: tuple[Rule, ...]


def _fail(origin: str, key: str, problem: str) -> RuleValidationError:
    return RuleValidationError(f"gateway config {origin}: '{key}' {problem}")


def _number(data: dict[str, Any], key: str, origin: str, *, minimum: float = 0.0) -> float:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
        raise _fail(origin, key, f"must be a number >= {minimum:g}, got {value!r}")
    return float(value)


def _limits(data: Any, key: str, origin: str) -> Limits:
    if data is None:
        return Limits()
    if not isinstance(data, dict):
        raise _fail(origin, key, "must be a mapping or null")
    burst = float(data.get("burst_seconds", 60.0))
    requests = tokens = None
    if data.get("requests_per_minute") is not None:
        requests = BucketLimit(_number(data, "requests_per_minute", origin, minimum=1e-9), burst)
    if data.get("tokens_per_minute") is not None:
        tokens = BucketLimit(_number(data, "tokens_per_minute", origin, minimum=1e-9), burst)
    return Limits(requests, tokens)


def _rule(data: Any, origin: str) -> Rule:
    if not isinstance(data, dict) or "name" not in data or "action" not in data:
        raise _fail(origin, "rules", f"each rule needs a name and an action, got {data!r}")
    name = str(data["name"])
    if data["action"] not in ACTIONS:
        raise _fail(origin, f"rules.{name}.action", f"must be one of {', '.join(ACTIONS)}")
    when = data.get("when") or {}
    unknown = set(when) - {"verdict", "in_campaign", "tiers", "verified", "min_requests",
                           "shares_at_least", "requests_per_minute_at_least",
                           "hours_active_at_least"}
    if unknown:
        raise _fail(origin, f"rules.{name}.when", f"has unknown conditions {sorted(unknown)}")
    verdicts = frozenset(when["verdict"]) if "verdict" in when else None
    if verdicts is not None and not verdicts <= _VERDICTS:
        raise _fail(origin, f"rules.{name}.when.verdict", "must list extraction and/or review")
    shares = {str(k): float(v) for k, v in (when.get("shares_at_least") or {}).items()}
    if not set(shares) <= set(SHARE_NAMES):
        raise _fail(origin, f"rules.{name}.when.shares_at_least",
                    f"names unknown shares; known: {', '.join(SHARE_NAMES)}")
    return Rule(
        name=name, action=data["action"], shadow=bool(data.get("shadow", False)),
        verdicts=verdicts, in_campaign=when.get("in_campaign"),
        tiers=frozenset(when["tiers"]) if "tiers" in when else None,
        verified=when.get("verified"), min_requests=int(when.get("min_requests", 0)),
        shares_at_least=shares,
        requests_per_minute_at_least=when.get("requests_per_minute_at_least"),
        hours_active_at_least=when.get("hours_active_at_least"))


def _keys(data: Any, origin: str) -> dict[str, AccountInfo]:
    keys: dict[str, AccountInfo] = {}
    for key, info in (data or {}).items():
        if not isinstance(info, dict) or not isinstance(info.get("account_id"), str):
            raise _fail(origin, "identity.keys", "each key needs an account_id")
        keys[str(key)] = AccountInfo(info["account_id"], info.get("org_id"), info.get("tier"),
                                     bool(info.get("verified", False)),
                                     info.get("payment_fingerprint"))
    return keys


def _parse(data: dict[str, Any], origin: str) -> GatewayConfig:
    try:
        upstream, identity = data["upstream"], data["identity"]
        watchlist, scoring, window, log = (data["watchlist"], data["scoring"], data["window"],
                                           data["log"])
        if identity["unknown_keys"] not in ("derive", "reject"):
            raise _fail(origin, "identity.unknown_keys", "must be derive or reject")
        if scoring["worker"] not in ("process", "inline"):
            raise _fail(origin, "scoring.worker", "must be process or inline")
        if data["mode"] not in ("enforce", "shadow"):
            raise _fail(origin, "mode", "must be enforce or shadow")
        parts, redis = data["content_parts"], data["redis"]
        if parts["unknown"] not in ("reject", "allow"):
            raise _fail(origin, "content_parts.unknown", "must be reject or allow")
        proxies = tuple(ipaddress.ip_network(p) for p in identity.get("trusted_proxies") or [])
        limits, throttle = data.get("limits") or {}, data.get("throttle") or {}
        return GatewayConfig(
            models=tuple(str(m) for m in data["models"]),
            max_body_bytes=int(_number(data, "max_body_bytes", origin, minimum=1)),
            max_header_bytes=int(_number(data, "max_header_bytes", origin, minimum=1024)),
            max_header_count=int(_number(data, "max_header_count", origin, minimum=8)),
            unknown_content_parts=parts["unknown"],
            connect_timeout=_number(upstream, "connect_timeout_seconds", origin),
            read_timeout=_number(upstream, "read_timeout_seconds", origin),
            max_connections=int(_number(upstream, "max_connections", origin, minimum=1)),
            upstream_api_key_env=upstream.get("api_key_env"),
            unknown_keys=identity["unknown_keys"], keys=_keys(identity.get("keys"), origin),
            trusted_proxies=proxies,
            watchlist_path=watchlist.get("path"),
            watchlist_poll_seconds=_number(watchlist, "poll_seconds", origin, minimum=0.01),
            batch_interval=_number(scoring, "batch_interval_ms", origin, minimum=1) / 1000,
            batch_max=int(_number(scoring, "batch_max", origin, minimum=1)),
            scoring_worker=scoring["worker"],
            scoring_worker_nice=int(_number(scoring, "worker_nice", origin, minimum=0)),
            template_memory=int(_number(scoring, "template_memory", origin, minimum=1)),
            window_hours=int(_number(window, "hours", origin, minimum=1)),
            window_refresh_seconds=_number(window, "refresh_seconds", origin),
            redis_timeout=_number(redis, "timeout_seconds", origin, minimum=0.001),
            redis_retry_seconds=_number(redis, "retry_seconds", origin),
            log_flush_seconds=_number(log, "flush_seconds", origin, minimum=0.01),
            log_rotate_bytes=int(_number(log, "rotate_bytes", origin, minimum=1)),
            log_rotate_seconds=_number(log, "rotate_seconds", origin, minimum=1),
            limits_account=_limits(limits.get("account"), "limits.account", origin),
            limits_org=_limits(limits.get("org"), "limits.org", origin),
            throttle_account=_limits(throttle.get("account"), "throttle.account", origin),
            throttle_org=_limits(throttle.get("org"), "throttle.org", origin),
            verification_url=str(data["verification_url"]),
            summary_chars=int(_number(data["withhold_reasoning"], "summary_chars", origin,
                                      minimum=1)),
            mode=data["mode"],
            rules=tuple(_rule(r, origin) for r in data.get("rules") or []))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        msg = f"gateway config {origin} does not match the config schema: {exc!r}"
        raise RuleValidationError(msg) from exc


def _merge(data: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(data)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and key != "rules":
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def load_config(path: str | Path | None = None, *,
                overrides: dict[str, Any] | None = None) -> GatewayConfig:
    """Load the packaged default config, with ``path``'s sections and then ``overrides``
    merged over it (one level deep: a file names only what it changes; ``rules``
    replaces the default rules whole)."""
    text = resources.files("distillguard.gateway").joinpath("data/gateway.yaml").read_text()
    data = yaml.safe_load(text)
    origin = "(packaged default)"
    if path is not None:
        origin = str(path)
        try:
            own = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise RuleValidationError(f"cannot read gateway config {path}: {exc}") from exc
        if not isinstance(own, dict):
            raise RuleValidationError(f"gateway config {origin} must be a mapping")
        data = _merge(data, own)
    return _parse(_merge(data, overrides or {}), origin)
