"""Shared state in a real redis-server: one limit and one window across replicas."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time

import httpx
import pytest

from distillguard.errors import StateStoreError
from distillguard.gateway.account_window import AccountWindows
from distillguard.gateway.config import BucketLimit
from distillguard.gateway.redis_state import RedisState
from distillguard.gateway.token_bucket import BucketCharge
from tests.gateway.conftest import RedisServer, free_port, gateway_config, read_log

COT = "Think step by step and write out your full reasoning before answering: what is 17 * 23?"


def _flush_db(url: str) -> None:
    async def run() -> None:
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(url)
        await client.flushdb()
        await client.aclose()

    asyncio.run(run())


def test_concurrent_takes_never_exceed_the_bucket(redis_url: str) -> None:
    _flush_db(redis_url)
    limit = BucketLimit(per_minute=6, burst_seconds=100)  # capacity 10, refills 0.1/s

    async def run() -> list[float]:
        # 40 connections opened at once on a busy machine: not a test of the timeout
        replicas = [RedisState(redis_url, timeout=5), RedisState(redis_url, timeout=5)]
        for r in replicas:
            await r.start()
        try:
            charge = [BucketCharge("acct:x:req", limit, 1)]
            return await asyncio.gather(*(replicas[i % 2].take(charge) for i in range(40)))
        finally:
            for r in replicas:
                await r.close()

    waits = asyncio.run(run())
    assert sum(w == 0 for w in waits) == 10
    assert all(w > 0 for w in waits if w != 0)


def test_window_counts_match_the_in_process_window(redis_url: str) -> None:
    _flush_db(redis_url)
    now = int(time.time() * 1000)
    rows = [("a", now - 3_600_000, {"requests": 1, "cot_elicitation": 1, "templated": 0}),
            ("a", now, {"requests": 1, "cot_elicitation": 0, "templated": 1}),
            ("a", now, {"requests": 1, "cot_elicitation": 1, "templated": 1})]
    memory = AccountWindows()
    for row in rows:
        memory.add(*row)

    async def run():
        state = RedisState(redis_url)
        await state.start()
        try:
            await state.record(rows)
            return await state.fresh_window("a")
        finally:
            await state.close()

    shared = asyncio.run(run())
    local = memory.stats("a", now)
    assert (shared.requests, shared.hours_active, shared.shares) == (
        local.requests, local.hours_active, local.shares)
    assert shared.requests == 3 and shared.hours_active == 2


def test_unreachable_redis_is_a_state_store_error() -> None:
    async def run() -> None:
        await RedisState(f"redis://127.0.0.1:{free_port()}/0").start()

    with pytest.raises(StateStoreError):
        asyncio.run(run())


def _two_replicas(gateway_factory, redis_url, config):
    from distillguard.gateway.redis_state import RedisState as State

    return [gateway_factory(config, state=State(redis_url, refresh_seconds=0.05),
                            log_dir=None) for _ in range(2)]


def test_two_replicas_enforce_one_limit(gateway_factory, redis_url):
    _flush_db(redis_url)
    config = gateway_config(limits={"account": {"requests_per_minute": 6, "burst_seconds": 50}})
    a, b = _two_replicas(gateway_factory, redis_url, config)  # capacity 5 requests
    codes = [(a if i % 2 else b).chat("sk-alice", f"q{i}").status_code for i in range(10)]
    assert codes.count(200) == 5 and codes.count(429) == 5
    assert codes[:5] == [200] * 5


def test_two_replicas_share_the_account_window(gateway_factory, redis_url):
    _flush_db(redis_url)
    config = gateway_config(rules=[{"name": "cot-harvest", "action": "block", "when": {
        "min_requests": 3, "shares_at_least": {"cot_elicitation": 0.6}}}])
    a, b = _two_replicas(gateway_factory, redis_url, config)
    for _ in range(3):
        assert a.chat("sk-carol", COT).status_code == 200
    deadline = time.monotonic() + 10
    while a.gateway.scorer.scored < 3:  # a has scored and written its window to Redis
        assert time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(0.1)
    # b has seen none of carol's requests itself: its first request starts reading the
    # window from Redis, the next one is decided on it.
    assert b.chat("sk-carol", COT).status_code in (200, 403)
    time.sleep(0.1)
    r = b.chat("sk-carol", COT)
    assert r.status_code == 403 and r.json()["error"]["code"] == "account_blocked"


def test_a_frozen_redis_delays_requests_by_the_configured_timeout_only(gateway_factory,
                                                                      tmp_path):
    """SIGSTOP keeps Redis's port open but silent: the limiter must give up after
    ``redis.timeout_seconds`` and fail open, then stop asking for ``retry_seconds``,
    and enforce again once Redis answers."""
    from distillguard.gateway.server import state_store

    with RedisServer(tmp_path / "redis") as redis:
        config = gateway_config(limits={"account": {"requests_per_minute": 6,
                                                    "burst_seconds": 50}},  # capacity 5
                                redis={"timeout_seconds": 0.2, "retry_seconds": 0.5})
        gw = gateway_factory(config, state=state_store(redis.url, config))
        gw.client.timeout = httpx.Timeout(3.0)  # the old, fixed wait was about 5 s
        assert gw.chat("sk-alice", "before").status_code == 200
        os.kill(redis.proc.pid, signal.SIGSTOP)
        try:
            codes = [gw.chat("sk-alice", f"frozen {i}").status_code for i in range(8)]
        finally:
            os.kill(redis.proc.pid, signal.SIGCONT)
        assert codes == [200] * 8  # failed open: 8 > the 4 the bucket still held
        time.sleep(0.6)  # past retry_seconds: the next request asks Redis again
        codes = [gw.chat("sk-alice", f"thawed {i}").status_code for i in range(6)]
        # enforced again (a take that timed out may still have run once Redis woke)
        assert codes.count(200) <= 4 and codes[-1] == 429
        gw.flush()
    rows, _ = read_log(tmp_path / "log")
    frozen = [r for r in rows if r["messages"][0]["content"].startswith("frozen")]
    assert len(frozen) == 8 and all("state_store" in r["extra"] for r in frozen)
    errors = re.search(r"^distillguard_gateway_state_errors_total (\S+)$", gw.metrics(), re.M)
    assert errors is not None and float(errors.group(1)) >= 8


def test_replies_cut_anywhere_are_read_whole() -> None:
    from distillguard.gateway.resp import RespError, _Incomplete, _parse

    replies = (b"+OK\r\n:42\r\n$5\r\nh\xc3\xa9lo\r\n$-1\r\n*2\r\n*2\r\n$1\r\na\r\n:1\r\n$0\r\n\r\n"
               b"-NOSCRIPT No matching script\r\n*0\r\n")
    expected = ["OK", 42, "hélo", None, [["a", 1], ""], "NOSCRIPT No matching script", []]
    for cut in range(len(replies)):
        buf, pos, got = bytearray(replies[:cut]), 0, []
        for chunk in (replies[cut:], b""):
            while True:
                try:
                    value, pos = _parse(buf, pos)
                except _Incomplete:
                    break
                got.append(str(value) if isinstance(value, RespError) else value)
            buf += chunk
        assert got == expected, cut


def test_the_limiter_script_is_loaded_again_when_redis_forgets_it(redis_url: str) -> None:
    """After a restart or SCRIPT FLUSH, the first take loads the script again; the database
    in the URL is the one written."""
    import redis.asyncio as aioredis

    url = redis_url.rsplit("/", 1)[0] + "/3"
    _flush_db(url)
    charge = [BucketCharge("acct:y:req", BucketLimit(per_minute=60, burst_seconds=2), 1)]

    async def run() -> tuple[list[float], list[str]]:
        state = RedisState(url)
        admin = aioredis.Redis.from_url(url, decode_responses=True)
        await state.start()
        try:
            waits = [await state.take(charge)]
            await admin.script_flush()
            waits += [await state.take(charge), await state.take(charge)]
            return waits, sorted(await admin.keys("dg:*"))
        finally:
            await state.close()
            await admin.aclose()

    waits, keys = asyncio.run(run())
    assert waits[:2] == [0.0, 0.0] and waits[2] > 0  # capacity 2
    assert keys == ["dg:b:acct:y:req"]
