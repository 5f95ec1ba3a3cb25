"""The gateway's exchanges sent as OpenTelemetry GenAI spans to an OTLP/HTTP endpoint.

Each exchange record is queued in memory as it is; a timer turns the queue into spans
(``logs.adapters.otlp_spans``, ids from the request id, so a batch sent again keeps its
ids) and sends them in batches (``POST {endpoint}/v1/traces``, protobuf or JSON)
off the request path, so a slow or absent collector never delays a request. A batch
the endpoint refuses for a reason that may pass (a connection error, a timeout, 429,
502, 503, 504) goes back to the head of the queue and is sent again at the next tick;
one refused for good (another 4xx), or that cannot be encoded, is dropped and counted.
Past ``max_queue_spans`` the oldest spans are dropped and counted. The counts are on ``/metrics``.
"""

from __future__ import annotations

import asyncio
import base64
import io
import logging
import os
import socket
import time
from collections import deque
from typing import Any

import aiohttp
import orjson
from google.protobuf.json_format import ParseDict
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from distillguard.gateway.config import OtlpExport
from distillguard.gateway.exchange_log import EXTRA_FIELDS
from distillguard.gateway.periodic import Periodic
from distillguard.logs.adapters.otlp_spans import exchange_span, traces_request

__all__ = ["RETRYABLE_STATUSES", "SpanExporter", "protobuf_body", "traces_url"]

RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
_WARN_EVERY_SECONDS = 60.0
_LARGE_BODY_BYTES = 1 << 20
_log = logging.getLogger("distillguard.gateway.otlp")


def traces_url(endpoint: str) -> str:
    """The traces URL of an OTLP/HTTP base ``endpoint`` (a URL ending in ``/v1/traces`` is
    taken as it is).

    >>> traces_url("http://collector:4318"), traces_url("http://c:4318/v1/traces")
    ('http://collector:4318/v1/traces', 'http://c:4318/v1/traces')
    """
    endpoint = endpoint.rstrip("/")
    return endpoint if endpoint.endswith("/v1/traces") else endpoint + "/v1/traces"


def _base64_ids(spans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Proto3 JSON carries bytes in base64; OTLP JSON carries span and trace ids in hex."""
    return [{**s, "traceId": base64.b64encode(bytes.fromhex(s["traceId"])).decode(),
             "spanId": base64.b64encode(bytes.fromhex(s["spanId"])).decode()} for s in spans]


def protobuf_body(request: dict[str, Any]) -> bytes:
    """An OTLP JSON ``ExportTraceServiceRequest`` as its protobuf encoding."""
    converted = {"resourceSpans": [
        {**rs, "scopeSpans": [{**ss, "spans": _base64_ids(ss["spans"])}
                              for ss in rs["scopeSpans"]]}
        for rs in request["resourceSpans"]]}
    return ParseDict(converted, trace_service_pb2.ExportTraceServiceRequest()
                     ).SerializeToString()


class SpanExporter:
    """Queue exchange records as spans; send them in batches on a timer (module docstring)."""

    def __init__(self, settings: OtlpExport) -> None:
        if not settings.endpoint:
            raise ValueError("an OTLP export needs an endpoint")
        self.settings = settings
        self.url = traces_url(settings.endpoint)
        self.resource = {"service.name": settings.service_name,
                         "host.name": socket.gethostname(), "process.pid": os.getpid()}
        self.spans_sent = 0
        self.spans_dropped = 0
        self.export_failures = 0
        self._queue: deque[dict[str, Any]] = deque()
        self._session: aiohttp.ClientSession | None = None
        self._timer = Periodic(settings.flush_seconds, self.flush)
        self._sending = asyncio.Lock()
        self._warned_at = float("-inf")

    def write(self, record: dict[str, Any]) -> None:
        """Queue one exchange record (the log line; made a span when sent, off the request
        path); the oldest record goes when full."""
        if len(self._queue) >= self.settings.max_queue_spans:
            self._queue.popleft()
            self.spans_dropped += 1
        self._queue.append(record)

    @property
    def queued(self) -> int:
        return len(self._queue)

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(
            total=self.settings.timeout_seconds))
        self._timer.start()

    async def close(self) -> None:
        """Stop the timer and send what is queued (one try per batch)."""
        await self._timer.stop()
        await self.flush()
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def flush(self) -> None:
        """Send the queue in batches until it is empty or a batch must wait."""
        async with self._sending:
            while self._queue and self._session is not None:
                size = min(self.settings.max_batch_spans, len(self._queue))
                batch = [self._queue.popleft() for _ in range(size)]
                retry = await self._send(batch)
                if retry:
                    room = self.settings.max_queue_spans - len(self._queue)
                    kept = batch[-room:] if room > 0 else []
                    self.spans_dropped += len(batch) - len(kept)
                    self._queue.extendleft(reversed(kept))
                    return

    async def _send(self, records: list[dict[str, Any]]) -> bool:
        """Send one batch of records as spans; True when it should be sent again later."""
        assert self._session is not None
        try:
            spans = [exchange_span(r, extra=EXTRA_FIELDS) for r in records]
            request = traces_request(spans, self.resource, scope="distillguard.gateway")
            if self.settings.protocol == "http/json":
                body, kind = orjson.dumps(request), "application/json"
            else:
                body, kind = protobuf_body(request), "application/x-protobuf"
        except Exception as exc:  # a record that cannot be encoded would fail again
            self.spans_dropped += len(records)
            self._failed(f"cannot encode {len(records)} records as spans: {exc!r}")
            return False
        # aiohttp warns on (and a warnings filter can raise for) bytes over 1 MiB; a file
        # object is its own advice for large bodies
        data = io.BytesIO(body) if len(body) > _LARGE_BODY_BYTES else body
        try:
            async with self._session.post(self.url, data=data,
                                          headers={"Content-Type": kind}) as reply:
                status, text = reply.status, (await reply.read())[:300]
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            self._failed(f"cannot reach {self.url}: {exc or type(exc).__name__}")
            return True
        except Exception as exc:  # the batch is out of the queue: count it, never lose it
            self.spans_dropped += len(records)
            self._failed(f"cannot send {len(records)} spans: {exc!r}")
            return False
        if 200 <= status < 300:
            self.spans_sent += len(spans)
            return False
        self._failed(f"{self.url} answered {status}: {text.decode('utf-8', 'replace')}")
        if status in RETRYABLE_STATUSES:
            return True
        self.spans_dropped += len(spans)
        return False

    def _failed(self, why: str) -> None:
        self.export_failures += 1
        now = time.monotonic()
        if now - self._warned_at >= _WARN_EVERY_SECONDS:
            self._warned_at = now
            _log.warning("OTLP span export failed (%d failures so far; %d spans queued): %s",
                         self.export_failures, len(self._queue), why)
