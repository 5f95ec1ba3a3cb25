"""The pooled HTTP/1.1 client to the upstream model API.

The gateway sends one kind of request (a POST with a JSON body, to one host) and
reads one kind of answer (a JSON body or a server-sent event stream), so the
client is an asyncio protocol of its own over ``httptools`` (the parser uvicorn
serves with): the request goes out in one write, the answer's head and body
come from the parser's callbacks, and the connection goes back to a pool of
kept-alive connections. aiohttp, used before, cost about 40 % of the gateway's
CPU per request in its own Python (headers, cookies, tracing, timeouts, payload
objects) for the same exchange (docs/gateway.md, "Measured").

Nothing is compressed: no ``Accept-Encoding`` is sent, so the body the upstream
answers is the body the client gets. Timeouts: ``connect_timeout`` to open a
connection, ``read_timeout`` between two reads of the answer. Errors never leave
this module as anything but ``UpstreamTimeout``, ``UpstreamMalformed`` (an answer
that is not HTTP, a head longer than ``MAX_HEAD_BYTES``, a whole answer longer than
``max_answer_bytes``, a second answer nobody asked for) or ``UpstreamError``.
An upstream is not trusted to be well-behaved: what it sends is bounded, and a
connection that sent more than its answer is closed, never reused.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import httptools

from distillguard.errors import UpstreamError, UpstreamMalformed, UpstreamTimeout

__all__ = ["MAX_HEAD_BYTES", "UpstreamClient", "UpstreamReply", "upstream_errors"]

# Request headers passed on to the upstream, with the one credential the gateway
# identified the client by (or the gateway's own key); the rest (host,
# content-length, hop-by-hop headers) are not.
_PASS_HEADERS = ("anthropic-version", "anthropic-beta", "openai-organization",
                 "openai-project", "user-agent")
# A streamed answer the client reads slower than the upstream sends is buffered up
# to this many bytes; past it, reading from the upstream pauses.
_HIGH_WATER = 1 << 18
# Idle pooled connections older than this are closed rather than reused.
_KEEPALIVE_SECONDS = 60.0
# An answer's head (status line and headers, interim 1xx answers included) longer than
# this is not an answer: httptools would gather a header for as long as it is sent.
MAX_HEAD_BYTES = 65536


class _SecondAnswer(Exception):
    """The upstream began an answer after the one asked for was complete."""


def _mapped(exc: Exception, url: str) -> UpstreamError:
    """A socket or timeout error as the ``UpstreamError`` it means."""
    if isinstance(exc, TimeoutError):
        return UpstreamTimeout(f"upstream {url} did not answer in time")
    return UpstreamError(f"upstream {url} failed: {exc.__class__.__name__}: {exc}")


_MAPPED = (OSError, httptools.HttpParserError)  # TimeoutError is an OSError


@contextmanager
def upstream_errors(url: str) -> Iterator[None]:
    """Map socket and timeout errors to the ``UpstreamError`` tree."""
    try:
        yield
    except _MAPPED as exc:
        raise _mapped(exc, url) from exc


class _Connection(asyncio.Protocol):
    """One kept-alive connection to the upstream, carrying one exchange at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop, read_timeout: float,
                 max_answer_bytes: int) -> None:
        self.loop = loop
        self.read_timeout = read_timeout
        self.max_answer_bytes = max_answer_bytes
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.idle_since = 0.0
        self._failure: Exception | None = None
        self._head: asyncio.Future[None] | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._body: deque[bytes] = deque()
        self._buffered = 0
        self._paused = False
        self._complete = False
        self._until_close = False
        self._whole = False  # resolve ``send`` only when the whole answer is in
        self._got_head = False
        self._head_bytes = 0  # read before the head ended
        self._received = 0  # body bytes of a whole answer
        self._timer: asyncio.TimerHandle | None = None
        self._last_read = 0.0
        self.status = 0
        self.content_type = ""
        self._content_length = False
        self._chunked = False
        self._keep_alive = False

    # one exchange

    def send(self, request: bytes, whole: bool) -> asyncio.Future[None]:
        """Write ``request``; the future resolves when the answer's head has arrived, or
        with ``whole`` when all of it has (one wake-up of the caller instead of two)."""
        assert self.transport is not None
        self.status, self.content_type, self._whole = 0, "", whole
        self._content_length = self._chunked = self._complete = self._until_close = False
        self._got_head = False
        self._head_bytes = self._received = 0
        self._body.clear()
        self._buffered = 0
        self._head = self.loop.create_future()
        self._last_read = self.loop.time()
        self._timer = self.loop.call_later(self.read_timeout, self._check_timeout)
        self.transport.write(request)
        return self._head

    @property
    def complete(self) -> bool:
        return self._complete

    @property
    def reusable(self) -> bool:
        return self._complete and not self.closed and self._keep_alive

    def take_body(self) -> bytes:
        """What arrived of the body and was not taken yet."""
        data = b"".join(self._body) if len(self._body) != 1 else self._body[0]
        self._body.clear()
        self._buffered = 0
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        return data

    async def wait_body(self) -> None:
        """Until more of the body arrives, the body is complete, or the exchange failed."""
        if self._body or self._complete:
            return
        if self._failure is not None:
            raise self._failure
        self._waiter = self.loop.create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    def done(self) -> None:
        """The exchange is over: stop its read timer."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def close(self) -> None:
        self.done()
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._last_read = self.loop.time()
        if self._head is None:  # nothing asked: an idle connection must not talk
            self.close()
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(UpstreamMalformed("the upstream switched protocols"))
            return
        except httptools.HttpParserCallbackError as exc:
            if isinstance(exc.__context__, _SecondAnswer):
                self.close()  # what was asked for is whole; what follows is never read
            elif isinstance(exc.__context__, UpstreamError):
                self._fail(exc.__context__)
            else:
                self._fail(UpstreamMalformed(f"the upstream's answer is not HTTP: {exc}"))
            return
        except httptools.HttpParserError as exc:
            self._fail(UpstreamMalformed(f"the upstream's answer is not HTTP: {exc}"))
            return
        if not self._got_head and not self._complete:
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES:
                self._fail(UpstreamMalformed(f"the upstream's answer head is longer than "
                                             f"{MAX_HEAD_BYTES} bytes"))

    def eof_received(self) -> bool | None:
        self._ended()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._ended(exc)

    def pause_writing(self) -> None:
        pass

    def resume_writing(self) -> None:
        pass

    # httptools callbacks

    def on_message_begin(self) -> None:
        if self._complete:
            raise _SecondAnswer

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name == b"content-type":
            self.content_type = value.decode("latin-1")
        elif name == b"content-length":
            self._content_length = True
        elif name == b"transfer-encoding":
            self._chunked = b"chunked" in value.lower()

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        if not 100 <= self.status <= 599:
            raise UpstreamMalformed(f"the upstream answered with status {self.status}")
        self._keep_alive = self.parser.should_keep_alive()  # reset once the message ends
        self._until_close = not (self._content_length or self._chunked) and \
            self.status not in (204, 304) and self.status >= 200
        if self.status < 200:  # 1xx: an interim answer; the real one follows
            self.content_type = ""
            return
        self._got_head = True
        if not self._whole:
            self._resolve()

    def on_body(self, body: bytes) -> None:
        if self._whole:
            self._received += len(body)
            if self._received > self.max_answer_bytes:
                raise UpstreamMalformed(f"the upstream's answer is longer than "
                                        f"{self.max_answer_bytes} bytes")
        self._body.append(body)
        self._buffered += len(body)
        if self._buffered > _HIGH_WATER and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self.status < 200:
            return
        self._complete = True
        self.done()
        self._resolve()
        self._wake()

    def _resolve(self) -> None:
        if self._head is not None and not self._head.done():
            self._head.set_result(None)

    # failures

    def _ended(self, exc: Exception | None = None) -> None:
        self.closed = True
        if self._head is None or self._complete:
            return
        if self._until_close and self._got_head:  # a body delimited by the close
            self._complete = True
            self.done()
            self._resolve()
            self._wake()
            return
        reason = f"{exc.__class__.__name__}: {exc}" if exc else "the connection was closed"
        self._fail(UpstreamError(f"the upstream dropped the connection ({reason})"))

    def _check_timeout(self) -> None:
        self._timer = None
        if self._complete or self.closed:
            return
        idle = self.loop.time() - self._last_read
        if idle < self.read_timeout:
            self._timer = self.loop.call_later(self.read_timeout - idle, self._check_timeout)
            return
        self._fail(UpstreamTimeout(f"no answer for {self.read_timeout:g} s"))
        self.close()

    def _fail(self, failure: Exception) -> None:
        if self._failure is None:
            self._failure = failure
        self.done()
        if self._head is not None and not self._head.done():
            self._head.set_exception(failure)
            self._head.exception()  # retrieved here: the caller may be gone
        self._wake()
        if self.transport is not None:
            self.closed = True
            self.transport.close()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    @property
    def failure(self) -> Exception | None:
        return self._failure


class UpstreamReply:
    """An upstream response whose body is still to be read (``read`` or ``chunks``)."""

    __slots__ = ("_client", "_conn", "content_type", "status", "url")

    def __init__(self, client: UpstreamClient, conn: _Connection, url: str) -> None:
        self._client = client
        self._conn = conn
        self.status = conn.status
        self.content_type = conn.content_type
        self.url = url

    async def read(self) -> bytes:
        """The whole body; the connection goes back to the pool."""
        conn = self._conn
        parts = []
        try:
            while True:
                await conn.wait_body()
                parts.append(conn.take_body())
                if conn.complete:
                    return b"".join(parts) if len(parts) > 1 else parts[0]
        except _MAPPED as exc:  # not a context manager: this is every request's path
            raise _mapped(exc, self.url) from exc
        finally:
            self._release()

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives; the connection goes back to the pool (or is closed,
        when the body was not read to its end) however the iteration ends."""
        conn = self._conn
        try:
            with upstream_errors(self.url):
                while True:
                    await conn.wait_body()
                    data = conn.take_body()
                    if data:
                        yield data
                    if conn.complete:
                        return
        finally:
            self._release()

    def _release(self) -> None:
        conn, self._conn = self._conn, None  # type: ignore[assignment]
        if conn is not None:
            self._client.release(conn)

    def close(self) -> None:
        """Drop the response: its connection is closed, never reused half-read."""
        conn, self._conn = self._conn, None  # type: ignore[assignment]
        if conn is not None:
            conn.close()
            self._client.release(conn)


class UpstreamClient:
    """Pooled connections to ``base_url``; start and close it inside the event loop."""

    def __init__(self, base_url: str, *, api_key: str | None = None, connect_timeout: float = 5.0,
                 read_timeout: float = 120.0, max_connections: int = 512,
                 max_answer_bytes: int = 1 << 25) -> None:
        self.base_url = base_url.rstrip("/")
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"upstream URL must be http:// or https:// with a host: {base_url}")
        self._tls = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._tls else 80)
        default_port = parts.port is None or parts.port == (443 if self._tls else 80)
        host = f"[{self._host}]" if ":" in self._host else self._host
        self._host_header = host if default_port else f"{host}:{self._port}"
        self._prefix = parts.path
        self.api_key = api_key
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_connections = max_connections
        self.max_answer_bytes = max_answer_bytes
        self._ssl: ssl.SSLContext | None = None
        self._idle: deque[_Connection] = deque()
        self._open: set[_Connection] = set()
        self._slots: asyncio.Semaphore | None = None
        # The gateway's own credential line for each API, built once (none: the caller's
        # credential is forwarded).
        self._own_credential: dict[str, str] | None = None if not api_key else {
            "anthropic": f"x-api-key: {api_key}\r\n",
            "openai": f"authorization: Bearer {api_key}\r\n"}

    async def start(self) -> None:
        self._slots = asyncio.Semaphore(self.max_connections)
        if self._tls:
            self._ssl = ssl.create_default_context()

    async def close(self) -> None:
        for conn in list(self._open):
            conn.close()
        self._open.clear()
        self._idle.clear()

    def _head(self, path: str, api: str, client: dict[str, str], credential: tuple[str, str],
              length: int, extra: tuple[tuple[str, str], ...] = ()) -> bytes:
        lines = [f"POST {self._prefix}{path} HTTP/1.1\r\nhost: {self._host_header}\r\n"
                 f"content-type: application/json\r\ncontent-length: {length}\r\n"]
        for name in _PASS_HEADERS:
            value = client.get(name)
            if value is not None:
                lines.append(f"{name}: {value}\r\n")
        if self._own_credential is not None:
            lines.append(self._own_credential.get(api) or self._own_credential["openai"])
        else:
            lines.append(f"{credential[0]}: {credential[1]}\r\n")
        lines.extend(f"{name}: {value}\r\n" for name, value in extra)
        lines.append("\r\n")
        return "".join(lines).encode("latin-1")

    async def _connection(self) -> _Connection:
        """An idle pooled connection, or a new one."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed and now - conn.idle_since < _KEEPALIVE_SECONDS:
                return conn
            conn.close()
            self._open.discard(conn)
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, conn = await loop.create_connection(
                    lambda: _Connection(loop, self.read_timeout, self.max_answer_bytes),
                    self._host, self._port,
                    ssl=self._ssl, server_hostname=self._host if self._tls else None)
        except TimeoutError as exc:
            raise UpstreamTimeout(f"upstream {self.base_url} did not accept a connection in "
                                  f"{self.connect_timeout:g} s") from exc
        self._open.add(conn)
        return conn

    def release(self, conn: _Connection) -> None:
        """Back to the pool when its exchange ended cleanly, else closed; frees its slot."""
        conn.done()
        if conn.reusable:
            conn.idle_since = conn.loop.time()
            self._idle.append(conn)
        else:
            conn.close()
            self._open.discard(conn)
        assert self._slots is not None
        self._slots.release()

    async def post(self, path: str, body: bytes, *, api: str, client_headers: dict[str, str],
                   credential: tuple[str, str], whole: bool = False,
                   extra_headers: tuple[tuple[str, str], ...] = ()) -> UpstreamReply:
        """Send ``body`` to ``path`` with the client's ``credential`` (header name and value)
        unless the gateway has a key of its own; the reply's body is read by the caller
        (``read`` or ``chunks``), or dropped with ``close``. ``whole``: return only once
        the whole answer is in (a request that is not streamed). ``extra_headers``: the
        gateway's own, after the client's (the watermark request)."""
        assert self._slots is not None, "UpstreamClient.start() was not called"
        url = self.base_url + path
        request = self._head(path, api, client_headers, credential, len(body),
                             extra_headers) + body
        await self._slots.acquire()
        conn: _Connection | None = None
        try:
            conn = await self._connection()
            await conn.send(request, whole)
        except BaseException as exc:
            if conn is not None:
                conn.close()
                self._open.discard(conn)
            self._slots.release()
            if isinstance(exc, _MAPPED):
                raise _mapped(exc, url) from exc
            raise
        return UpstreamReply(self, conn, url)
