"""A small Redis client for the gateway's state: RESP2 over one pipelined connection.

Every command is written as soon as it is called and its reply is matched in order
(Redis answers a connection's commands in the order they came), so concurrent
requests share one connection without a pool, a lock or a round trip each
waiting for the last. redis-py's asyncio client, used before, cost about 250 µs of
CPU per limiter call on a busy machine (connection pool, locks, its Python
parser); here a call is one encoded write and a parsed reply.

A call that gets no reply within ``timeout`` fails with ``TimeoutError``, and so
do all calls waiting behind it: the connection is closed (a frozen Redis keeps its
port open and never answers) and the next call opens a new one. Error replies are
``RespError``; connection failures ``OSError``.

What a server sends is not trusted to be Redis: bytes that are not RESP2, arrays
nested deeper than ``MAX_DEPTH``, a reply of more than ``MAX_ITEMS`` values or still
unfinished past ``MAX_REPLY_BYTES`` (so that reading again a reply that arrives in
pieces stays cheap), or a reply no command asked for fail every waiting call with a ``RespError`` saying
so, and the connection is closed (the gateway's replies are a few hundred bytes).
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = ["MAX_DEPTH", "MAX_ITEMS", "MAX_REPLY_BYTES", "RespClient", "RespError"]

MAX_DEPTH = 4
MAX_ITEMS = 4096
MAX_REPLY_BYTES = 1 << 20


class RespError(Exception):
    """An error reply from Redis (``-ERR ...``)."""


class _Incomplete(Exception):
    """The buffer ends inside a reply: wait for more bytes."""


def _encode(args: tuple[Any, ...]) -> bytes:
    out = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        out += [f"${len(data)}\r\n".encode(), data, b"\r\n"]
    return b"".join(out)


def _parse(buf: bytearray, pos: int, depth: int = 0, items: list[int] | None = None
           ) -> tuple[Any, int]:
    """One reply from ``buf`` at ``pos``: the value (bulk strings as str) and the next
    position; ``_Incomplete`` when the buffer ends first. ``items``: the values an
    array may still hold, shared by the arrays nested in it."""
    end = buf.find(b"\r\n", pos)
    if end < 0:
        raise _Incomplete
    kind, line = buf[pos:pos + 1], bytes(buf[pos + 1:end])
    pos = end + 2
    if kind == b"+":
        return line.decode(), pos
    if kind == b":":
        return int(line), pos
    if kind == b"$":
        size = int(line)
        if size < -1 or size > MAX_REPLY_BYTES:
            raise RespError(f"a bulk string of {size} bytes")
        if size < 0:
            return None, pos
        if len(buf) < pos + size + 2:
            raise _Incomplete
        return bytes(buf[pos:pos + size]).decode(), pos + size + 2
    if kind == b"*":
        count = int(line)
        items = [MAX_ITEMS] if items is None else items
        items[0] -= max(count, 0)
        if count < -1 or depth >= MAX_DEPTH or items[0] < 0:
            raise RespError(f"an array of {count} values, {depth + 1} deep (at most "
                            f"{MAX_ITEMS} values, {MAX_DEPTH} deep)")
        if count < 0:
            return None, pos
        values = []
        for _ in range(count):
            value, pos = _parse(buf, pos, depth + 1, items)
            values.append(value)
        return values, pos
    if kind == b"-":
        return RespError(line.decode(errors="replace")), pos
    raise RespError(f"not a RESP reply: {bytes(buf[pos - 2 - len(line) - 1:end])[:80]!r}")


class _Connection(asyncio.Protocol):
    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float) -> None:
        self.loop = loop
        self.timeout = timeout
        self.transport: asyncio.Transport | None = None
        self.waiting: deque[tuple[asyncio.Future[Any], float]] = deque()
        self.buf = bytearray()
        self.closed = False
        self._timer: asyncio.TimerHandle | None = None

    def call(self, args: tuple[Any, ...]) -> asyncio.Future[Any]:
        assert self.transport is not None
        future = self.loop.create_future()
        now = self.loop.time()
        self.waiting.append((future, now))
        if self._timer is None:
            self._timer = self.loop.call_at(now + self.timeout, self._check)
        self.transport.write(_encode(args))
        return future

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if not self.waiting:
            self.fail(RespError(f"Redis sent {bytes(data[:40])!r} when no command was waiting"))
            return
        self.buf += data
        pos = 0
        try:
            while self.waiting and pos < len(self.buf):
                value, pos = _parse(self.buf, pos)
                future, _ = self.waiting.popleft()
                if future.done():
                    continue  # its caller gave up
                if isinstance(value, RespError):
                    future.set_exception(value)
                else:
                    future.set_result(value)
        except _Incomplete:
            pass
        except (RespError, ValueError) as exc:
            self.fail(RespError(f"Redis sent what is not a reply: {exc}"))
            return
        del self.buf[:pos]
        if self.buf and not self.waiting:
            self.fail(RespError(f"Redis sent {bytes(self.buf[:40])!r} that no command asked "
                                "for"))
        elif len(self.buf) > MAX_REPLY_BYTES:
            self.fail(RespError(f"Redis sent a reply longer than {MAX_REPLY_BYTES} bytes"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(ConnectionError(f"the connection to Redis was lost: {exc or 'closed'}"))

    def _check(self) -> None:
        self._timer = None
        if not self.waiting:
            return
        deadline = self.waiting[0][1] + self.timeout
        if self.loop.time() >= deadline:
            self.fail(TimeoutError(f"Redis did not answer within {self.timeout:g} s"))
        else:
            self._timer = self.loop.call_at(deadline, self._check)

    def fail(self, exc: BaseException) -> None:
        """Fail every waiting call with ``exc`` and close the connection."""
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self.waiting:
            future, _ = self.waiting.popleft()
            if not future.done():
                future.set_exception(exc)
                future.exception()  # retrieved here: its caller may have gone
        if self.transport is not None:
            self.transport.close()


class RespClient:
    """Redis at ``url`` (``redis://[user:password@]host[:port][/db]``, ``rediss://`` for TLS,
    ``unix:///path?db=N``), over one connection opened on first use and again after
    a failure."""

    def __init__(self, url: str, *, timeout: float = 0.25) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss", "unix"):
            raise ValueError(f"not a Redis URL: {url}")
        self.url = url
        self.timeout = timeout
        self._unix = parts.path if parts.scheme == "unix" else None
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 6379
        self._tls = parts.scheme == "rediss"
        query = parse_qs(parts.query)
        db = parts.path.strip("/") if parts.scheme != "unix" else ""
        self._db = int(db or query.get("db", ["0"])[0])
        self._user = unquote(parts.username) if parts.username else None
        self._password = unquote(parts.password) if parts.password else None
        self._conn: _Connection | None = None
        self._connecting: asyncio.Future[_Connection] | None = None

    async def _open(self) -> _Connection:
        loop = asyncio.get_running_loop()

        def protocol() -> _Connection:
            return _Connection(loop, self.timeout)

        async with asyncio.timeout(self.timeout):
            if self._unix is not None:
                _, conn = await loop.create_unix_connection(protocol, self._unix)
            else:
                context = ssl.create_default_context() if self._tls else None
                _, conn = await loop.create_connection(
                    protocol, self._host, self._port, ssl=context,
                    server_hostname=self._host if self._tls else None)
            setup = []
            if self._password is not None:
                auth = (self._user, self._password) if self._user else (self._password,)
                setup.append(conn.call(("AUTH", *auth)))
            if self._db:
                setup.append(conn.call(("SELECT", self._db)))
            try:
                await asyncio.gather(*setup)
            except BaseException:
                conn.fail(ConnectionError("Redis refused the connection's setup"))
                raise
        return conn

    async def _connection(self) -> _Connection:
        conn = self._conn
        if conn is not None and not conn.closed:
            return conn
        if self._connecting is None:  # one connect for every caller waiting on it
            self._connecting = asyncio.ensure_future(self._open())
        connecting = self._connecting
        try:
            self._conn = await asyncio.shield(connecting)
        finally:
            if self._connecting is connecting and connecting.done():
                self._connecting = None
        return self._conn

    async def call(self, *args: Any) -> Any:
        """One command's reply."""
        conn = self._conn
        if conn is None or conn.closed:
            conn = await self._connection()
        return await conn.call(args)

    async def calls(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        """Several commands written together (a pipeline): their replies, in order."""
        conn = self._conn
        if conn is None or conn.closed:
            conn = await self._connection()
        return list(await asyncio.gather(*(conn.call(c) for c in commands)))

    async def close(self) -> None:
        if self._connecting is not None:
            self._connecting.cancel()
            self._connecting = None
        if self._conn is not None:
            self._conn.fail(ConnectionError("the client was closed"))
            self._conn = None
