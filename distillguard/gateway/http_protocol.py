"""The gateway's HTTP/1.1 connection: uvicorn's httptools protocol, with the request head
capped as it arrives and the HTTP layer's own refusals in the API's JSON format.

Why a protocol and not a middleware: both problems happen before an ASGI app
sees the request. httptools gathers a header value by concatenating the pieces
that arrive (as uvicorn gathers the URL), so a header of hundreds of megabytes
costs time growing faster than its size while every other client on the event
loop waits; and framing errors (two Content-Lengths, bad chunking) are answered
by uvicorn in plain text. Here:

- a head still arriving is counted by the bytes fed while it stays open, and a
  head that ends within a read that could take it past the limit is measured
  exactly (URL and header bytes); past ``max_header_bytes``, or past
  ``max_header_count`` headers, the request is refused with 431 before anything
  more of it is parsed. At most the limit and one read more is parsed;
- framing errors are answered 400, in the format of the API the path names
  (OpenAI when the path is not known yet).

A refused connection is answered, half-closed, and what the client still sends
is read and dropped for ``LINGER_SECONDS`` before it is closed: closing with
unread data would reset the connection and could destroy the answer in flight.
The hot path gains a few integer operations per read and per request, none per
header. A response's head and the first piece of its body leave in one write
(``_OneWrite``), where uvicorn writes each on its own.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from distillguard.errors import ApiError
from distillguard.gateway.api_errors import api_of_path, error_body

__all__ = ["LINGER_SECONDS", "GatewayHttpProtocol", "gateway_protocol"]

LINGER_SECONDS = 1.0


class GatewayHttpProtocol(HttpToolsProtocol):
    """One client connection; ``gateway_protocol`` makes the class with the config's limits."""

    max_header_bytes = 65536
    max_header_count = 100

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.url = b""
        self._messages = 0  # requests begun on this connection
        self._head_open = True  # the current request's head is still being read
        self._head_fed = 0  # bytes of its head fed in reads after the one it began in
        self._begin_len = 0  # the length of the read it began in
        self._measure = False  # this read could take a head past the limit: measure heads
        self._refused = False
        self._pending: bytes | None = None  # a refusal waiting for an earlier response

    def _too_large(self, what: str) -> ApiError:
        return ApiError(431, f"The request's {what}; headers are refused past "
                        f"{self.max_header_bytes} bytes or {self.max_header_count} fields.",
                        code="request_header_fields_too_large")

    # asyncio.Protocol

    def data_received(self, data: bytes) -> None:
        """Feed the parser; refuse a head that is still open past the limit. Heads that
        end within this read are measured exactly, in ``on_headers_complete``, when this
        read and the head's earlier reads could together pass the limit."""
        if self._refused:
            return  # lingering: read and drop
        self._unset_keepalive_if_required()
        head_was_open, messages = self._head_open, self._messages
        self._measure = len(data) + self._head_fed + self._begin_len > self.max_header_bytes
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            self._refuse(cause if isinstance(cause, ApiError) else _invalid(exc))
            return
        except httptools.HttpParserError as exc:
            self._refuse(_invalid(exc))
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        if not self._head_open:
            return
        if self._messages != messages:
            self._head_fed, self._begin_len = 0, len(data)
        elif head_was_open:
            self._head_fed += len(data)
            if self._head_fed > self.max_header_bytes:
                self._refuse(self._too_large("headers are too large"))

    # httptools callbacks

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._messages += 1
        self._head_open = True

    def on_headers_complete(self) -> None:
        if len(self.headers) > self.max_header_count:
            raise self._too_large("header fields are too many")
        if self._measure and len(self.url) + sum(
                len(name) + len(value) + 4 for name, value in self.headers
        ) > self.max_header_bytes:
            raise self._too_large("headers are too large")
        self._head_open = False
        self._head_fed = self._begin_len = 0
        super().on_headers_complete()
        self.cycle.transport = _OneWrite(self.transport, self.loop)  # type: ignore[union-attr]

    def on_response_complete(self) -> None:
        if self._pending is not None and not self.pipeline:
            self.server_state.total_requests += 1
            response, self._pending = self._pending, None
            self._answer_and_close(response)
            return
        super().on_response_complete()

    # refusals

    def _refuse(self, error: ApiError) -> None:
        """Answer ``error`` in the API's format and end the connection.

        A refusal waits for the response of an earlier (pipelined) request under way. A
        body that breaks the framing ends its own request: its app sees a disconnect,
        and the answer is not sent if the app's response has already begun.
        """
        self._refused = True
        response = self._error_response(error)
        cycle = self.cycle
        if cycle is not None and not self._head_open:  # this request's own body broke
            cycle.disconnected = True
            cycle.message_event.set()
            if cycle.response_started:
                self.transport.close()
                return
            busy = any(queued is cycle for queued, _ in self.pipeline)
            if busy:
                self.pipeline = deque(item for item in self.pipeline if item[0] is not cycle)
        else:
            busy = cycle is not None and not cycle.response_complete
        if busy:
            self._pending = response
        else:
            self._answer_and_close(response)

    def _error_response(self, error: ApiError) -> bytes:
        body = error_body(api_of_path(self.url.decode("latin-1")), error)
        head = [STATUS_LINE[error.status]]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head += [b"content-type: application/json\r\ncontent-length: ",
                 str(len(body)).encode(), b"\r\nconnection: close\r\n\r\n", body]
        return b"".join(head)

    def _answer_and_close(self, response: bytes) -> None:
        self.transport.write(response)
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER_SECONDS, self.transport.close)


class _OneWrite:
    """A request's view of the connection: the response's first write (its head) is held
    and goes out with the next one (the first piece of the body), in one system call
    instead of two, and one wake-up of the client instead of two. A first write still
    held when the event loop's turn ends is written then, so nothing ever waits on a
    body that does not follow."""

    __slots__ = ("_first", "_held", "_loop", "transport")

    def __init__(self, transport: Any, loop: Any) -> None:
        self.transport = transport
        self._loop = loop
        self._first = True
        self._held: bytes | None = None

    def write(self, data: bytes) -> None:
        if self._first:
            self._first = False
            self._held = data
            self._loop.call_soon(self.flush)
            return
        if self._held is not None:
            data, self._held = self._held + data, None
        self.transport.write(data)

    def flush(self) -> None:
        if self._held is not None:
            held, self._held = self._held, None
            if not self.transport.is_closing():
                self.transport.write(held)

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def is_closing(self) -> bool:
        return bool(self.transport.is_closing())

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


def _invalid(exc: Exception) -> ApiError:
    return ApiError(400, f"Invalid HTTP request: {exc}.", code="invalid_http_request")


def gateway_protocol(max_header_bytes: int, max_header_count: int
                     ) -> type[GatewayHttpProtocol]:
    """The protocol class uvicorn instantiates per connection, with these limits."""
    return type("GatewayHttpProtocol", (GatewayHttpProtocol,), {
        "max_header_bytes": max_header_bytes, "max_header_count": max_header_count})
