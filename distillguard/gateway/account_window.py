"""Per-account sliding window: what the policy knows about an account's recent traffic.

Counts are kept per hour (``COUNTERS``, over the last ``hours``) and per minute
(velocity). Shares follow the batch scan's definitions: a request uses a
technique when its score is 1 (a strong lexicon match), as in
``behavior/account_sql.py``; ``templated`` means the request reuses a text unit
(a line or sentence of 40+ characters, hashed by ``signals.template_units``) of
an earlier request of the same account.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from distillguard.signals import TECHNIQUES

if TYPE_CHECKING:
    from distillguard.gateway.scoring import ScoredRequest

__all__ = ["COUNTERS", "SHARES", "AccountWindows", "TemplateMemory", "WindowStats", "request_counts",
           "sliding_minute"]

# Shares of the window (each counter over ``requests``): the gateway config's rules name them.
SHARES = (*TECHNIQUES, "any_technique", "templated", "multi_turn")
COUNTERS = ("requests", *SHARES)
HOUR_MS = 3_600_000
MINUTE_MS = 60_000


@dataclass(frozen=True)
class WindowStats:
    """An account's last ``hours``: request count, shares, velocity, hours with traffic."""

    requests: int = 0
    shares: dict[str, float] = field(default_factory=dict)
    requests_last_minute: int = 0
    hours_active: int = 0

    @classmethod
    def from_counts(cls, hourly: dict[int, dict[str, int]], last_minute: int) -> WindowStats:
        totals = dict.fromkeys(COUNTERS, 0)
        for counts in hourly.values():
            for name, n in counts.items():
                if name in totals:
                    totals[name] += int(n)
        n = totals["requests"]
        shares = {name: (totals[name] / n if n else 0.0) for name in SHARES}
        active = sum(1 for c in hourly.values() if int(c.get("requests", 0)) > 0)
        return cls(n, shares, last_minute, active)

    def as_dict(self) -> dict[str, object]:
        return {"requests": self.requests, "shares": {k: round(v, 4) for k, v in self.shares.items()},
                "requests_last_minute": self.requests_last_minute,
                "hours_active": self.hours_active}


class TemplateMemory:
    """The text units each account sent lately, to tell whether a request reuses one.

    Bounded per account (least recently seen units are forgotten) and in
    accounts (least recently active forgotten).
    """

    def __init__(self, per_account: int = 2048, accounts: int = 100_000) -> None:
        self.per_account = per_account
        self.accounts = accounts
        self._units: OrderedDict[str, OrderedDict[int, None]] = OrderedDict()

    def reuses(self, account_id: str, units: list[int]) -> bool:
        """Whether ``units`` repeat one the account sent before; remembers them."""
        seen = self._units.get(account_id)
        if seen is None:
            seen = self._units[account_id] = OrderedDict()
            if len(self._units) > self.accounts:
                self._units.popitem(last=False)
        else:
            self._units.move_to_end(account_id)
        hit = False
        for unit in units:
            if unit in seen:
                hit = True
                seen.move_to_end(unit)
            else:
                seen[unit] = None
        while len(seen) > self.per_account:
            seen.popitem(last=False)
        return hit


def request_counts(scored: ScoredRequest, templated: bool) -> dict[str, int]:
    """The hour counters one scored request adds."""
    counts = {"requests": 1}
    any_technique = 0
    for name in TECHNIQUES:
        hit = int(scored.techniques[name] >= 1.0)
        counts[name] = hit
        any_technique |= hit
    counts["any_technique"] = any_technique
    counts["templated"] = int(templated)
    counts["multi_turn"] = int(scored.prior_turns > 0)
    return counts


class AccountWindows:
    """In-process windows of every account (the state store without Redis)."""

    def __init__(self, hours: int = 24) -> None:
        self.hours = hours
        self._hourly: dict[str, dict[int, dict[str, int]]] = {}
        self._minutes: dict[str, dict[int, int]] = {}
        self._cache: dict[str, tuple[WindowStats, int]] = {}

    def add(self, account_id: str, ts_ms: int, counts: dict[str, int]) -> None:
        hour, minute = ts_ms // HOUR_MS, ts_ms // MINUTE_MS
        hourly = self._hourly.setdefault(account_id, {})
        bucket = hourly.setdefault(hour, dict.fromkeys(COUNTERS, 0))
        for name, n in counts.items():
            bucket[name] = bucket.get(name, 0) + n
        for old in [h for h in hourly if h <= hour - self.hours]:
            del hourly[old]
        minutes = self._minutes.setdefault(account_id, {})
        minutes[minute] = minutes.get(minute, 0) + counts.get("requests", 0)
        for old in [m for m in minutes if m < minute - 1]:
            del minutes[old]
        self._cache.pop(account_id, None)

    def replace(self, account_id: str, hourly: dict[int, dict[str, int]],
                minutes: dict[int, int]) -> None:
        """The account's counts as read from elsewhere (shared state), replacing its own."""
        self._hourly[account_id] = hourly
        self._minutes[account_id] = minutes
        self._cache.pop(account_id, None)

    def stats(self, account_id: str, now_ms: int) -> WindowStats:
        """The account's window now; recomputed after new counts or once a second."""
        cached = self._cache.get(account_id)
        if cached is not None and now_ms - cached[1] < 1000:
            return cached[0]
        hour = now_ms // HOUR_MS
        hourly = {h: c for h, c in self._hourly.get(account_id, {}).items()
                  if h > hour - self.hours}
        stats = WindowStats.from_counts(hourly, sliding_minute(
            self._minutes.get(account_id, {}), now_ms))
        self._cache[account_id] = (stats, now_ms)
        return stats


def sliding_minute(minutes: dict[int, int], now_ms: int) -> int:
    """Requests in the last 60 s from per-minute counts: this minute's, plus last minute's
    weighted by the part of it still inside the 60 s."""
    minute = now_ms // MINUTE_MS
    elapsed = (now_ms % MINUTE_MS) / MINUTE_MS
    return round(minutes.get(minute, 0) + minutes.get(minute - 1, 0) * (1 - elapsed))
