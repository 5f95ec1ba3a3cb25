"""``distillguard collect``: an OTLP/HTTP receiver writing the spans and logs it is sent to
rotating OTLP JSON files that ``scan`` and ``ingest`` read.

It answers ``POST /v1/traces`` and ``POST /v1/logs`` as an OpenTelemetry Collector does:
bodies in ``application/x-protobuf`` or ``application/json`` (optionally gzip-encoded);
success is an empty ``Export*ServiceResponse`` in the request's encoding; a bad request
is answered with a ``google.rpc.Status`` (code and message) in the request's encoding
and the HTTP status of the OTLP/HTTP specification: 400 for a body that does not
decode, 413 past the size limit, 415 for another content type, 404/405 elsewhere.
Nothing a client sends can stop the receiver.

Each accepted request becomes one line of OTLP JSON (the Collector's file exporter
format: camelCase keys, hex trace and span ids, 64-bit integers as strings), spans and
logs in the same files, so that the reader finds a span's content log records beside it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import DecodeError, Message
from google.rpc import status_pb2
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from distillguard.logs.adapters.otlp import export_shape_problem
from distillguard.logs.rotating import RotatingLines

__all__ = ["PROTOBUF", "CollectOptions", "ReceiverStats", "receiver_app", "to_otlp_json"]

PROTOBUF, JSON = "application/x-protobuf", "application/json"
# google.rpc.Code values of the errors answered
_INVALID_ARGUMENT, _NOT_FOUND, _RESOURCE_EXHAUSTED, _UNIMPLEMENTED, _INTERNAL = 3, 5, 8, 12, 13
_HTTP_ERRORS = {404: (_NOT_FOUND, "no such path"), 405: (_UNIMPLEMENTED, "method not allowed")}
_ID_FIELDS = ("traceId", "spanId", "parentSpanId")


@dataclass(frozen=True, slots=True)
class CollectOptions:
    """Where and how the receiver writes, and the largest body it accepts (after gzip)."""

    out: str
    max_body_bytes: int = 16 << 20
    flush_seconds: float = 1.0
    rotate_bytes: int = 64 << 20
    rotate_seconds: float = 3600.0


@dataclass(slots=True)
class ReceiverStats:
    """What the receiver took in since it started."""

    requests: int = 0
    spans: int = 0
    log_records: int = 0
    rejected: int = 0


@dataclass(frozen=True, slots=True)
class _Signal:
    """One OTLP signal: its request and response messages and the key of its JSON list."""

    request: Callable[[], Message]
    response: Callable[[], Message]
    key: str
    items: tuple[str, str]


_TRACES = _Signal(trace_service_pb2.ExportTraceServiceRequest,
                  trace_service_pb2.ExportTraceServiceResponse, "resourceSpans",
                  ("scopeSpans", "spans"))
_LOGS = _Signal(logs_service_pb2.ExportLogsServiceRequest,
                logs_service_pb2.ExportLogsServiceResponse, "resourceLogs",
                ("scopeLogs", "logRecords"))


class BadRequest(Exception):
    """A request answered with an OTLP error: HTTP status, ``google.rpc.Code``, message."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _hex_ids(item: dict[str, Any]) -> None:
    """Proto3 JSON writes bytes in base64; OTLP JSON writes trace and span ids in hex."""
    for key in _ID_FIELDS:
        value = item.get(key)
        if isinstance(value, str):
            item[key] = base64.b64decode(value).hex()
    for link in item.get("links") or []:
        _hex_ids(link)


def to_otlp_json(message: Message, signal: _Signal = _TRACES) -> dict[str, Any]:
    """A decoded export request as OTLP JSON (what the Collector's file exporter writes)."""
    data = MessageToDict(message, use_integers_for_enums=True)
    scopes_key, items_key = signal.items
    for resource in data.get(signal.key) or []:
        for scope in resource.get(scopes_key) or []:
            for item in scope.get(items_key) or []:
                _hex_ids(item)
    return data


def _count(data: dict[str, Any], signal: _Signal) -> int:
    scopes_key, items_key = signal.items
    return sum(len(scope.get(items_key) or []) for resource in data.get(signal.key) or []
               if isinstance(resource, dict) for scope in resource.get(scopes_key) or []
               if isinstance(scope, dict))


def _check_json(data: Any, signal: _Signal) -> dict[str, Any]:
    """An OTLP JSON request's shape: an object whose resource list, scope lists and item
    lists are lists of objects (values inside are the reader's to judge)."""
    if not isinstance(data, dict):
        raise BadRequest(400, _INVALID_ARGUMENT, "the body must be a JSON object "
                         f"(an Export{'Trace' if signal is _TRACES else 'Logs'}ServiceRequest)")
    problem = export_shape_problem(data)
    if problem is not None:
        raise BadRequest(400, _INVALID_ARGUMENT, problem)
    return data


async def _body(request: Request, limit: int) -> bytes:
    """The request body, gunzipped when it says so, refused past ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BadRequest(413, _RESOURCE_EXHAUSTED, f"body of {declared} bytes is over the "
                         f"limit of {limit} bytes")
    pieces, size = [], 0
    async for piece in request.stream():
        size += len(piece)
        if size > limit:
            raise BadRequest(413, _RESOURCE_EXHAUSTED, f"body is over the limit of {limit} bytes")
        pieces.append(piece)
    body = b"".join(pieces)
    encoding = request.headers.get("content-encoding", "identity").lower()
    if encoding == "gzip":
        inflate = zlib.decompressobj(wbits=31)
        try:
            body = inflate.decompress(body, limit + 1)
        except zlib.error as exc:
            raise BadRequest(400, _INVALID_ARGUMENT, f"gzip body does not inflate: {exc}") from exc
        if len(body) > limit or inflate.unconsumed_tail:
            raise BadRequest(413, _RESOURCE_EXHAUSTED,
                             f"inflated body is over the limit of {limit} bytes")
    elif encoding not in ("identity", ""):
        raise BadRequest(415, _UNIMPLEMENTED, f"content encoding {encoding!r} is not supported "
                         "(use gzip or none)")
    return body


def _content_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def _reply(kind: str, message: Message, status: int = 200) -> Response:
    if kind == PROTOBUF:
        return Response(message.SerializeToString(), status_code=status, media_type=PROTOBUF)
    return Response(orjson.dumps(MessageToDict(message)), status_code=status, media_type=JSON)


def receiver_app(options: CollectOptions, *, writer: RotatingLines | None = None) -> Starlette:
    """The receiver, writing through ``writer`` (by default rotating files in ``options.out``)."""
    lines = writer or RotatingLines(options.out, prefix="otlp",
                                    flush_seconds=options.flush_seconds,
                                    rotate_bytes=options.rotate_bytes,
                                    rotate_seconds=options.rotate_seconds)
    stats = ReceiverStats()

    async def export(request: Request, signal: _Signal) -> Response:
        kind = _content_type(request)
        reply_kind = PROTOBUF if kind == PROTOBUF else JSON
        try:
            if kind not in (PROTOBUF, JSON):
                raise BadRequest(415, _UNIMPLEMENTED, f"content type {kind or 'none'!r} is not "
                                 f"supported: send {PROTOBUF} or {JSON}")
            body = await _body(request, options.max_body_bytes)
            data = _decode(body, kind, signal)
        except BadRequest as exc:
            stats.rejected += 1
            return _reply(reply_kind, status_pb2.Status(code=exc.code, message=exc.message),
                          exc.status)
        count = _count(data, signal)
        if count:
            lines.append(orjson.dumps(data, option=orjson.OPT_APPEND_NEWLINE))
        stats.requests += 1
        if signal is _TRACES:
            stats.spans += count
        else:
            stats.log_records += count
        return _reply(reply_kind, signal.response())

    async def traces(request: Request) -> Response:
        return await export(request, _TRACES)

    async def logs(request: Request) -> Response:
        return await export(request, _LOGS)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        flushing = asyncio.get_running_loop().create_task(lines.run_flushes())
        try:
            yield
        finally:
            flushing.cancel()
            await asyncio.gather(flushing, return_exceptions=True)
            lines.close()

    async def refused(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 500)
        code, words = _HTTP_ERRORS.get(status, (_INTERNAL, "internal error"))
        stats.rejected += 1
        kind = PROTOBUF if _content_type(request) == PROTOBUF else JSON
        return _reply(kind, status_pb2.Status(
            code=code, message=f"{words}: {request.method} {request.url.path} (OTLP/HTTP "
            "receives POST /v1/traces and POST /v1/logs)"), status)

    app = Starlette(routes=[Route("/v1/traces", traces, methods=["POST"]),
                            Route("/v1/logs", logs, methods=["POST"])], lifespan=lifespan,
                    exception_handlers={404: refused, 405: refused, Exception: refused})
    app.state.stats = stats
    app.state.lines = lines
    return app


def _decode(body: bytes, kind: str, signal: _Signal) -> dict[str, Any]:
    if kind == PROTOBUF:
        message = signal.request()
        try:
            message.ParseFromString(body)
        except (DecodeError, ValueError, RuntimeError) as exc:
            raise BadRequest(400, _INVALID_ARGUMENT, f"body is not a protobuf "
                             f"{message.DESCRIPTOR.name}: {exc}") from exc
        return to_otlp_json(message, signal)
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(400, _INVALID_ARGUMENT, f"body is not valid JSON: {exc}") from exc
    return _check_json(data, signal)
