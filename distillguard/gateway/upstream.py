"""The pooled HTTP client to the upstream model API (aiohttp, chosen by measurement:
docs/gateway.md).

aiohttp's errors never leave this module: ``UpstreamTimeout`` when the upstream
is too slow to connect or to send the next bytes, ``UpstreamError`` when it
cannot be reached or drops the connection.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import aiohttp

from distillguard.errors import UpstreamError, UpstreamTimeout

__all__ = ["UpstreamClient", "UpstreamReply", "upstream_errors"]

# Request headers passed on to the upstream, with the one credential the gateway
# identified the client by (or the gateway's own key); the rest (host,
# content-length, hop-by-hop headers) are not.
_PASS_HEADERS = ("anthropic-version", "anthropic-beta", "openai-organization",
                 "openai-project", "user-agent")


@contextmanager
def upstream_errors(url: str) -> Iterator[None]:
    """Map aiohttp and timeout errors to the ``UpstreamError`` tree."""
    try:
        yield
    except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
        raise UpstreamTimeout(f"upstream {url} did not answer in time") from exc
    except aiohttp.ClientError as exc:
        raise UpstreamError(f"upstream {url} failed: {exc.__class__.__name__}: {exc}") from exc


@dataclass
class UpstreamReply:
    """An upstream response whose body is still to be read (``read`` or ``chunks``)."""

    status: int
    content_type: str
    response: aiohttp.ClientResponse
    url: str

    async def read(self) -> bytes:
        with upstream_errors(self.url):
            try:
                return await self.response.read()
            finally:
                self.response.release()

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives; the connection goes back to the pool (or is closed,
        when the stream was not read to its end) however the iteration ends."""
        try:
            with upstream_errors(self.url):
                async for chunk in self.response.content.iter_any():
                    yield chunk
        finally:
            if self.response.content.at_eof():
                self.response.release()
            else:
                self.response.close()

    def close(self) -> None:
        self.response.close()


class UpstreamClient:
    """One pooled session to ``base_url``; create and close it inside the event loop."""

    def __init__(self, base_url: str, *, api_key: str | None = None, connect_timeout: float = 5.0,
                 read_timeout: float = 120.0, max_connections: int = 512) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=self.max_connections, keepalive_timeout=60,
                                         ttl_dns_cache=300)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.connect_timeout,
                                        sock_read=self.read_timeout)
        self._session = aiohttp.ClientSession(connector=connector, timeout=timeout,
                                              auto_decompress=False, skip_auto_headers=(
                                                  "User-Agent",))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _headers(self, api: str, client: dict[str, str], credential: tuple[str, str]
                 ) -> dict[str, str]:
        headers = {k: client[k] for k in _PASS_HEADERS if k in client}
        headers["content-type"] = "application/json"
        if self.api_key:
            if api == "anthropic":
                headers["x-api-key"] = self.api_key
            else:
                headers["authorization"] = f"Bearer {self.api_key}"
        else:
            headers[credential[0]] = credential[1]
        return headers

    async def post(self, path: str, body: bytes, *, api: str, client_headers: dict[str, str],
                   credential: tuple[str, str]) -> UpstreamReply:
        """Send ``body`` to ``path`` with the client's ``credential`` (header name and value)
        unless the gateway has a key of its own; the reply's body is read by the caller."""
        assert self._session is not None, "UpstreamClient.start() was not called"
        url = self.base_url + path
        with upstream_errors(url):
            response = await self._session.post(url, data=body,
                                                headers=self._headers(api, client_headers,
                                                                      credential))
        return UpstreamReply(response.status, response.headers.get("content-type", ""),
                             response, url)
