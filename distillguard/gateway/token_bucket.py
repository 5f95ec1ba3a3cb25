"""Token buckets in process memory: the limiter of a single gateway.

A bucket refills at ``rate`` per second up to ``capacity``. ``take`` admits a
request only when every bucket it needs holds its cost (all or none are
charged), else says how long to wait. ``charge`` corrects a bucket afterwards
(tokens actually used) and may leave it below zero: the next requests wait.
``redis_state`` runs the same rules in Redis for several replicas.
"""

from __future__ import annotations

from dataclasses import dataclass

from distillguard.gateway.config import BucketLimit

__all__ = ["BucketCharge", "MemoryBuckets"]


@dataclass(frozen=True, slots=True)
class BucketCharge:
    key: str
    limit: BucketLimit
    cost: float


class MemoryBuckets:
    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}

    def _level(self, key: str, limit: BucketLimit, now: float) -> float:
        level, at = self._buckets.get(key, (limit.capacity, now))
        return min(limit.capacity, level + (now - at) * limit.rate)

    def take(self, charges: list[BucketCharge], now: float) -> float:
        """0 when admitted (every bucket charged), else seconds until it would be."""
        wait = 0.0
        levels = []
        for c in charges:
            level = self._level(c.key, c.limit, now)
            levels.append(level)
            need = min(c.cost, c.limit.capacity)
            if level < need:
                wait = max(wait, (need - level) / c.limit.rate)
        if wait > 0:
            return wait
        for c, level in zip(charges, levels, strict=True):
            self._buckets[c.key] = (level - c.cost, now)
        return 0.0

    def charge(self, charges: list[BucketCharge], now: float) -> None:
        for c in charges:
            self._buckets[c.key] = (self._level(c.key, c.limit, now) - c.cost, now)

    def level(self, key: str, limit: BucketLimit, now: float) -> float:
        return self._level(key, limit, now)
