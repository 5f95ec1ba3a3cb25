"""Gateway state in Redis, so that several replicas enforce one limit together.

Limiter buckets live in Redis hashes and are taken and charged by one Lua
script each time, atomically, on Redis's own clock (``TIME``): replicas never
race and never disagree on time. Window counters are per account and hour
(``HINCRBY``, written once per scored micro-batch) and per minute; a replica
keeps a local copy of each account's window, re-read in the background at most
every ``refresh_seconds``, so the request path never waits on Redis for it. The
replica's own counts are added to its copy as they are written: its own traffic
counts at once, other replicas' at the next read.
The client (``resp.py``) pipelines every command on one connection; its errors
never leave this module: they become ``StateStoreError``. Every call gives up
after ``timeout`` seconds (a frozen Redis keeps its port open and never
answers), and after a failure Redis is not asked again for ``retry_seconds``:
the limiter fails open at once rather than each request waiting out the timeout.

Round trips: a request makes one (the limiter's script) when a limit applies and
none otherwise. Windows that went stale are re-read together, in one pipeline per
turn of the event loop, whatever the number of accounts, and an account's at most
once per ``refresh_seconds``; counters are written once per scored batch
(``tests/gateway/test_redis_round_trips.py`` counts the commands).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager

from distillguard.errors import StateStoreError
from distillguard.gateway.account_window import (
    COUNTERS,
    HOUR_MS,
    MINUTE_MS,
    AccountWindows,
    WindowStats,
)
from distillguard.gateway.resp import RespClient, RespError
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
        self._client = RespClient(url, timeout=timeout)
        self._sha = ""
        self._local = AccountWindows(hours)  # the windows as last read, plus own counts
        self._read_at: dict[str, float] = {}  # monotonic time each account's was read
        self._stale: set[str] = set()  # accounts whose window is to be re-read
        self._refresh: asyncio.Task[None] | None = None

    @contextmanager
    def _redis_errors(self, what: str) -> Iterator[None]:
        """Map the client's errors to ``StateStoreError``; after one, fail at once, without
        asking Redis, until ``retry_seconds`` have passed."""
        if self._failed_at is not None:
            since = time.monotonic() - self._failed_at
            if since < self.retry_seconds:
                raise StateStoreError(f"Redis {what} skipped: Redis failed {since:.2f} s ago "
                                      f"(asked again {self.retry_seconds:g} s after a failure)")
        try:
            yield
        except (RespError, OSError) as exc:
            self._failed_at = time.monotonic()
            raise StateStoreError(f"Redis {what} failed: {exc.__class__.__name__}: {exc}"
                                  ) from exc
        self._failed_at = None

    async def start(self) -> None:
        with self._redis_errors("connection"):
            self._sha = await self._client.call("SCRIPT", "LOAD", BUCKET_SCRIPT)

    async def close(self) -> None:
        if self._refresh is not None:
            self._refresh.cancel()
            await asyncio.gather(self._refresh, return_exceptions=True)
        await self._client.close()

    async def _run_script(self, mode: str, charges: list[BucketCharge]) -> float:
        args: list[object] = [mode]
        for c in charges:
            args += [c.limit.rate, c.limit.capacity, c.cost]
        keys = [f"{self.prefix}:b:{c.key}" for c in charges]
        with self._redis_errors("limiter"):
            try:
                return float(await self._client.call("EVALSHA", self._sha, len(keys), *keys,
                                                     *args))
            except RespError as exc:
                if not str(exc).startswith("NOSCRIPT"):
                    raise
                # Redis restarted or was flushed: load the script again
                self._sha = await self._client.call("SCRIPT", "LOAD", BUCKET_SCRIPT)
                return float(await self._client.call("EVALSHA", self._sha, len(keys), *keys,
                                                     *args))

    async def take(self, charges: list[BucketCharge]) -> float:
        return await self._run_script("take", charges)

    async def charge(self, charges: list[BucketCharge]) -> None:
        await self._run_script("charge", charges)

    async def levels(self, charges: list[BucketCharge]) -> dict[str, float]:
        out = {}
        now = time.time()
        with self._redis_errors("read"):
            replies = await self._client.calls([("HMGET", f"{self.prefix}:b:{c.key}", "l", "t")
                                                for c in charges])
        for c, (level, at) in zip(charges, replies, strict=True):
            out[c.key] = c.limit.capacity if level is None else round(min(
                c.limit.capacity, float(level) + (now - float(at)) * c.limit.rate), 3)
        return out

    def _hour_key(self, account_id: str, hour: int) -> str:
        return f"{self.prefix}:w:{account_id}:{hour}"

    def _minute_key(self, account_id: str, minute: int) -> str:
        return f"{self.prefix}:m:{account_id}:{minute}"

    async def record(self, rows: list[tuple[str, int, dict[str, int]]]) -> None:
        hourly: dict[tuple[str, int], dict[str, int]] = {}
        minutes: dict[tuple[str, int], int] = {}
        for account_id, ts_ms, counts in rows:
            bucket = hourly.setdefault((account_id, ts_ms // HOUR_MS), {})
            for name, n in counts.items():
                if n:
                    bucket[name] = bucket.get(name, 0) + n
            key = (account_id, ts_ms // MINUTE_MS)
            minutes[key] = minutes.get(key, 0) + counts.get("requests", 0)
        commands: list[tuple[object, ...]] = []
        for (account_id, hour), counts in hourly.items():
            key = self._hour_key(account_id, hour)
            commands += [("HINCRBY", key, name, n) for name, n in counts.items()]
            commands.append(("EXPIRE", key, (self.hours + 1) * 3600))
        for (account_id, minute), n in minutes.items():
            key = self._minute_key(account_id, minute)
            commands += [("INCRBY", key, n), ("EXPIRE", key, 180)]
        for account_id, ts_ms, counts in rows:
            if account_id in self._read_at:
                self._local.add(account_id, ts_ms, counts)
        with self._redis_errors("window update"):
            await self._client.calls(commands)

    async def _read_windows(self, accounts: list[str]) -> list[WindowStats]:
        """The windows of ``accounts`` from Redis, in one pipeline; each kept as the local
        copy."""
        now_ms = int(time.time() * 1000)
        hour, minute = now_ms // HOUR_MS, now_ms // MINUTE_MS
        hours = list(range(hour - self.hours + 1, hour + 1))
        commands: list[tuple[object, ...]] = []
        for account_id in accounts:
            commands += [("HGETALL", self._hour_key(account_id, h)) for h in hours]
            commands += [("GET", self._minute_key(account_id, minute)),
                         ("GET", self._minute_key(account_id, minute - 1))]
        with self._redis_errors("window read"):
            replies = await self._client.calls(commands)
        out, step, read_at = [], len(hours) + 2, time.monotonic()
        for i, account_id in enumerate(accounts):
            results = replies[i * step:(i + 1) * step]
            hourly = {h: {k: int(v) for k, v in zip(r[::2], r[1::2], strict=True)
                          if k in COUNTERS}
                      for h, r in zip(hours, results, strict=False) if r}
            this_minute, last_minute = (int(x or 0) for x in results[-2:])
            self._local.replace(account_id, hourly, {minute: this_minute,
                                                     minute - 1: last_minute})
            self._read_at[account_id] = read_at
            out.append(self._local.stats(account_id, now_ms))
        return out

    async def fresh_window(self, account_id: str) -> WindowStats:
        return (await self._read_windows([account_id]))[0]

    async def _refresh_stale(self) -> None:
        await asyncio.sleep(0)  # the requests of this turn of the loop join the read
        accounts, self._stale = list(self._stale), set()
        try:
            await self._read_windows(accounts)
        except StateStoreError:
            pass  # keep the last copies; the next requests try again
        finally:
            self._refresh = None

    def window(self, account_id: str, now_ms: int) -> WindowStats:
        """The local copy (empty before the first read); re-read in the background when
        stale, with every other stale account's."""
        read_at = self._read_at.get(account_id)
        if read_at is None or time.monotonic() - read_at >= self.refresh_seconds:
            self._stale.add(account_id)
            if self._refresh is None:
                self._refresh = asyncio.get_running_loop().create_task(self._refresh_stale())
        return self._local.stats(account_id, now_ms) if read_at is not None else WindowStats()
