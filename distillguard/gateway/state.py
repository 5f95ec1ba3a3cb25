"""Gateway state: account windows and limiter buckets, in process or shared.

``MemoryState`` serves one gateway; ``RedisState`` (``redis_state.py``) the
same interface for several replicas enforcing one limit together. The request
path calls only ``window`` (synchronous, from a local copy) and, when a limit
applies, ``take``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from distillguard.gateway.account_window import AccountWindows, WindowStats
from distillguard.gateway.token_bucket import BucketCharge, MemoryBuckets

__all__ = ["MemoryState", "StateStore"]


class StateStore(Protocol):
    name: str

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def take(self, charges: list[BucketCharge]) -> float: ...

    async def charge(self, charges: list[BucketCharge]) -> None: ...

    async def record(self, rows: list[tuple[str, int, dict[str, int]]]) -> None: ...

    def window(self, account_id: str, now_ms: int) -> WindowStats: ...

    async def fresh_window(self, account_id: str) -> WindowStats: ...

    async def levels(self, charges: list[BucketCharge]) -> dict[str, float]: ...


class MemoryState:
    """Everything in this process; lost on restart. Buckets refill on ``clock``
    (seconds, monotonic)."""

    name = "memory"

    def __init__(self, *, hours: int = 24, clock: Callable[[], float] = time.monotonic) -> None:
        self.windows = AccountWindows(hours)
        self.buckets = MemoryBuckets()
        self.clock = clock

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def take(self, charges: list[BucketCharge]) -> float:
        return self.buckets.take(charges, self.clock())

    async def charge(self, charges: list[BucketCharge]) -> None:
        self.buckets.charge(charges, self.clock())

    async def record(self, rows: list[tuple[str, int, dict[str, int]]]) -> None:
        for account_id, ts_ms, counts in rows:
            self.windows.add(account_id, ts_ms, counts)

    def window(self, account_id: str, now_ms: int) -> WindowStats:
        return self.windows.stats(account_id, now_ms)

    async def fresh_window(self, account_id: str) -> WindowStats:
        return self.windows.stats(account_id, int(time.time() * 1000))

    async def levels(self, charges: list[BucketCharge]) -> dict[str, float]:
        now = self.clock()
        return {c.key: round(self.buckets.level(c.key, c.limit, now), 3) for c in charges}
