"""A server on Redis's port that does not answer like Redis: the gateway's RESP client fails
every waiting call with a clear error, never hangs, never grows without bound, and the
limiter fails open through ``StateStoreError``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from distillguard.errors import StateStoreError
from distillguard.gateway.config import BucketLimit
from distillguard.gateway.redis_state import RedisState
from distillguard.gateway.resp import MAX_REPLY_BYTES, RespClient, RespError
from distillguard.gateway.token_bucket import BucketCharge

Answer = Callable[[bytes, int], bytes]  # (what was read, reads so far) -> bytes to send


async def _with_server(answer: Answer, test: Callable[[str], object]) -> object:
    """Run ``test(url)`` against a server that answers each read with ``answer``."""
    reads = 0

    class Fake(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport

        def data_received(self, data: bytes) -> None:
            nonlocal reads
            reads += 1
            out = answer(data, reads)
            if out:
                self.transport.write(out)  # type: ignore[attr-defined]

    server = await asyncio.get_running_loop().create_server(Fake, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        return await test(f"redis://127.0.0.1:{port}/0")  # type: ignore[misc]
    finally:
        server.close()


def _call_fails(answer: Answer, *, timeout: float = 2.0) -> BaseException:
    async def test(url: str) -> BaseException:
        client = RespClient(url, timeout=timeout)
        try:
            with pytest.raises((RespError, OSError)) as caught:
                await client.call("PING")
            return caught.value
        finally:
            await client.close()

    return asyncio.run(_with_server(answer, test))  # type: ignore[return-value]


@pytest.mark.parametrize(("sent", "said"), [
    (b"HTTP/1.1 400 Bad Request\r\n\r\n", "not a RESP reply"),
    (b"*1\r\n" * 100_000, "deep"),
    (b"*100000\r\n" + b":1\r\n" * 5000, "100000 values"),
    (b"$999999999\r\n", "bulk string of 999999999 bytes"),
    (b"$-7\r\n", "bulk string of -7 bytes"),
    (b":12ab\r\n", "not a reply"),
    (b"$2\r\n\xff\xfe\r\n", "not a reply"),
])
def test_what_is_not_a_redis_reply_fails_the_call_clearly(sent, said):
    error = _call_fails(lambda data, n: sent)
    assert isinstance(error, RespError) and said in str(error), error


def test_a_reply_that_never_ends_is_cut_at_the_limit():
    error = _call_fails(lambda data, n: b"*2\r\n$900000\r\n" + b"x" * 900_000 + b"\r\n$900000\r\n"
                        + b"y" * 300_000)
    assert isinstance(error, RespError) and f"longer than {MAX_REPLY_BYTES}" in str(error)


def test_a_server_that_never_answers_times_out():
    error = _call_fails(lambda data, n: b"", timeout=0.2)
    assert isinstance(error, TimeoutError) and "did not answer within 0.2 s" in str(error)


@pytest.mark.parametrize("extra", [b"+UNASKED\r\n", b"$900000\r\n" + b"y" * 900_000])
def test_replies_no_command_asked_for_close_the_connection_and_the_next_call_reopens(extra):
    """A reply glued behind the one asked for, or sent while nothing waits, is never taken
    as the next command's reply."""
    async def test(url: str) -> tuple[object, ...]:
        client = RespClient(url, timeout=2)
        try:
            first = await client.call("PING")  # answered with its reply and more
            conn = client._conn
            assert conn is not None and conn.closed
            second = await client.call("PING")  # a new connection, answered as it should
            conn = client._conn
            assert conn is not None and not conn.closed
            conn.data_received(b"+UNASKED\r\n")  # as if the server spoke unasked
            assert conn.closed
            return first, second, await client.call("PING")
        finally:
            await client.close()

    replies = [b"+PONG\r\n" + extra, b"+PONG\r\n", b"+PONG\r\n"]
    got = asyncio.run(_with_server(lambda data, n: replies[min(n, 3) - 1], test))
    assert got == ("PONG", "PONG", "PONG")


def test_the_limiter_fails_open_on_a_server_that_is_not_redis():
    charge = [BucketCharge("acct:z:req", BucketLimit(per_minute=60, burst_seconds=2), 1)]

    async def test(url: str) -> str:
        state = RedisState(url, timeout=1, retry_seconds=0)
        with pytest.raises(StateStoreError) as caught:
            await state.start()
        with pytest.raises(StateStoreError):
            await state.take(charge)
        await state.close()
        return str(caught.value)

    said = asyncio.run(_with_server(lambda data, n: b"<html>not redis</html>\r\n", test))
    assert said.startswith("Redis connection failed: RespError: Redis sent what is not a reply")
