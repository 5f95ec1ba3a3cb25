"""Gateway state in Redis, so that several replicas enforce one limit together.

Limiter buckets live in Redis hashes and are taken and charged by one Lua
script each time, atomically, on Redis's own clock (``TIME``): replicas never
race and never disagree on time. Window counters are per account and hour
(``HINCRBY``, written once per scored micro-batch) and per minute; a replica
keeps a local copy of each account's window, re-read in the background at most
every ``refresh_seconds``, so the request path never waits on Redis for it.
redis-py's errors never leave this module: they become ``StateStoreError``.
Every call gives up after ``timeout`` seconds (a frozen Redis keeps its port
open and never answers), and after a failure Redis is not asked again for
``retry_seconds``: the limiter fails open at once rather than each request
waiting out the timeout.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from distillguard.errors import StateStoreError
from distillguard.gateway.account_window import (
    COUNTERS,
    HOUR_MS,
    MINUTE_MS,
    WindowStats,
    sliding_minute,
)
from distillguard.gateway.token_bucket import BucketCharge

__all__ = ["BUCKET_SCRIPT", "RedisState"]

# KEYS: bucket keys. ARGV[1]: "take" (all or none, if every bucket holds its
# cost) or "charge" (always, may go below zero); then rate, capacity, cost per key.
# Returns "0" when taken or charged, else the seconds to wait, as text.
BUCKET_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local levels = {}
local wait = 0
for i = 1, #KEYS do
  local rate = tonumber(ARGV[3 * i - 1])
  local cap = tonumber(ARGV[3 * i])
  local cost = tonumber(ARGV[3 * i + 1])
  local v = redis.call('HMGET', KEYS[i], 'l', 't')
  local level = cap
  if v[1] then level = math.min(cap, tonumber(v[1]) + (now - tonumber(v[2])) * rate) end
  levels[i] = level
  local need = math.min(cost, cap)
  if ARGV[1] == 'take' and level < need then wait = math.max(wait, (need - level) / rate) end
end
if wait > 0 then return tostring(wait) end
for i = 1, #KEYS do
  local rate = tonumber(ARGV[3 * i - 1])
  local cap = tonumber(ARGV[3 * i])
  local cost = tonumber(ARGV[3 * i + 1])
  redis.call('HSET', KEYS[i], 'l', tostring(levels[i] - cost), 't', tostring(now))
  redis.call('EXPIRE', KEYS[i], math.ceil(cap / rate) + 60)
end
return '0'
"""


class RedisState:
    """The ``StateStore`` of replicas sharing one Redis at ``url``."""

    name = "redis"

    def __init__(self, url: str, *, hours: int = 24, refresh_seconds: float = 1.0,
                 prefix: str = "dg", timeout: float = 0.25, retry_seconds: float = 1.0) -> None:
        self.url = url
        self.hours = hours
        self.refresh_seconds = refresh_seconds
        self.prefix = prefix
        self.timeout = timeout
        self.retry_seconds = retry_seconds
        self._failed_at: float | None = None
        self._client: aioredis.Redis | None = None
        self._script: object = None
        self._windows: dict[str, tuple[WindowStats, float]] = {}
        self._refreshing: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @contextmanager
    def _redis_errors(self, what: str) -> Iterator[None]:
        """Map redis-py's errors to ``StateStoreError``; after one, fail at once, without
        asking Redis, until ``retry_seconds`` have passed."""
        if self._failed_at is not None:
            since = time.monotonic() - self._failed_at
            if since < self.retry_seconds:
                raise StateStoreError(f"Redis {what} skipped: Redis failed {since:.2f} s ago "
                                      f"(asked again {self.retry_seconds:g} s after a failure)")
        try:
            yield
        except (RedisError, OSError) as exc:
            self._failed_at = time.monotonic()
            raise StateStoreError(f"Redis {what} failed: {exc.__class__.__name__}: {exc}"
                                  ) from exc
        self._failed_at = None

    async def start(self) -> None:
        self._client = aioredis.Redis.from_url(self.url, decode_responses=True,
                                               socket_timeout=self.timeout,
                                               socket_connect_timeout=self.timeout)
        with self._redis_errors("connection"):
            await self._client.ping()
        self._script = self._client.register_script(BUCKET_SCRIPT)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _run_script(self, mode: str, charges: list[BucketCharge]) -> float:
        args: list[object] = [mode]
        for c in charges:
            args += [c.limit.rate, c.limit.capacity, c.cost]
        keys = [f"{self.prefix}:b:{c.key}" for c in charges]
        with self._redis_errors("limiter"):
            return float(await self._script(keys=keys, args=args))  # type: ignore[operator]

    async def take(self, charges: list[BucketCharge]) -> float:
        return await self._run_script("take", charges)

    async def charge(self, charges: list[BucketCharge]) -> None:
        await self._run_script("charge", charges)

    async def levels(self, charges: list[BucketCharge]) -> dict[str, float]:
        assert self._client is not None
        out = {}
        now = time.time()
        with self._redis_errors("read"):
            for c in charges:
                level, at = await self._client.hmget(f"{self.prefix}:b:{c.key}", "l", "t")
                out[c.key] = c.limit.capacity if level is None else round(min(
                    c.limit.capacity, float(level) + (now - float(at)) * c.limit.rate), 3)
        return out

    def _hour_key(self, account_id: str, hour: int) -> str:
        return f"{self.prefix}:w:{account_id}:{hour}"

    def _minute_key(self, account_id: str, minute: int) -> str:
        return f"{self.prefix}:m:{account_id}:{minute}"

    async def record(self, rows: list[tuple[str, int, dict[str, int]]]) -> None:
        assert self._client is not None
        hourly: dict[tuple[str, int], dict[str, int]] = {}
        minutes: dict[tuple[str, int], int] = {}
        for account_id, ts_ms, counts in rows:
            bucket = hourly.setdefault((account_id, ts_ms // HOUR_MS), {})
            for name, n in counts.items():
                if n:
                    bucket[name] = bucket.get(name, 0) + n
            key = (account_id, ts_ms // MINUTE_MS)
            minutes[key] = minutes.get(key, 0) + counts.get("requests", 0)
        with self._redis_errors("window update"):
            async with self._client.pipeline(transaction=False) as pipe:
                for (account_id, hour), counts in hourly.items():
                    key = self._hour_key(account_id, hour)
                    for name, n in counts.items():
                        pipe.hincrby(key, name, n)
                    pipe.expire(key, (self.hours + 1) * 3600)
                for (account_id, minute), n in minutes.items():
                    key = self._minute_key(account_id, minute)
                    pipe.incrby(key, n)
                    pipe.expire(key, 180)
                await pipe.execute()
        for account_id, _, _ in rows:
            cached = self._windows.get(account_id)
            if cached is not None:
                self._windows[account_id] = (cached[0], float("-inf"))  # stale: re-read

    async def fresh_window(self, account_id: str) -> WindowStats:
        assert self._client is not None
        now_ms = int(time.time() * 1000)
        hour, minute = now_ms // HOUR_MS, now_ms // MINUTE_MS
        hours = list(range(hour - self.hours + 1, hour + 1))
        with self._redis_errors("window read"):
            async with self._client.pipeline(transaction=False) as pipe:
                for h in hours:
                    pipe.hgetall(self._hour_key(account_id, h))
                pipe.get(self._minute_key(account_id, minute))
                pipe.get(self._minute_key(account_id, minute - 1))
                results = await pipe.execute()
        hourly = {h: {k: int(v) for k, v in r.items() if k in COUNTERS}
                  for h, r in zip(hours, results, strict=False) if r}
        this_minute, last_minute = (int(x or 0) for x in results[-2:])
        stats = WindowStats.from_counts(hourly, sliding_minute(
            {minute: this_minute, minute - 1: last_minute}, now_ms))
        self._windows[account_id] = (stats, time.monotonic())
        return stats

    async def _refresh(self, account_id: str) -> None:
        try:
            await self.fresh_window(account_id)
        except StateStoreError:
            pass  # keep the last copy; the next request tries again
        finally:
            self._refreshing.discard(account_id)

    def window(self, account_id: str, now_ms: int) -> WindowStats:
        """The local copy (empty before the first read); re-read in the background when stale."""
        cached = self._windows.get(account_id)
        stale = cached is None or time.monotonic() - cached[1] >= self.refresh_seconds
        if stale and account_id not in self._refreshing:
            self._refreshing.add(account_id)
            task = asyncio.get_running_loop().create_task(self._refresh(account_id))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return cached[0] if cached is not None else WindowStats()
