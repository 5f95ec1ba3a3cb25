"""Send traffic through the openai client instrumented by the official OpenTelemetry GenAI
instrumentation, exporting the spans (and content log records) it emits.

Run as a script by the adapter tests (its own process: the instrumentation reads its
content mode from the environment once, and the SDK's providers are process-wide):

    python emit_spans.py TRAFFIC.jsonl.gz BASE_URL --mode span_only --otlp URL
        --otlp-json URL --file spans.jsonl

Each request is sent with the account's API key (``sk-ACCOUNT``); a span processor puts
the account on each span as ``enduser.id``, as an application sets its user on spans.
"""

from __future__ import annotations

import argparse
import contextvars
import gzip
import io
import os
import threading
from typing import Any

import orjson

ACCOUNT: contextvars.ContextVar[str] = contextvars.ContextVar("account")


class LockedStream(io.TextIOBase):
    """One text file shared by the span and log file exporters (each has its own lock)."""

    def __init__(self, path: str) -> None:
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            return self._file.write(text)

    def flush(self) -> None:
        with self._lock:
            self._file.flush()

    def close(self) -> None:
        self._file.close()

    @property
    def closed(self) -> bool:
        return self._file.closed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("traffic")
    parser.add_argument("base_url")
    parser.add_argument("--mode", default="span_only",
                        help="span_only (content on the span) or event_only (content in a "
                        "log record of the span)")
    parser.add_argument("--otlp", help="OTLP/HTTP protobuf endpoint (base URL)")
    parser.add_argument("--otlp-json", help="OTLP/HTTP JSON endpoint (base URL)")
    parser.add_argument("--file", help="OTLP JSON file to append to")
    parser.add_argument("--stream-every", type=int, default=7)
    parser.add_argument("--limit", type=int, default=0)
    args = parser.parse_args()
    os.environ["OTEL_SEMCONV_STABILITY_OPT_IN"] = "gen_ai_latest_experimental"
    os.environ["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"] = args.mode

    import openai
    from opentelemetry.exporter.otlp.json.file import FileSpanExporter
    from opentelemetry.exporter.otlp.json.file._log_exporter import FileLogExporter
    from opentelemetry.exporter.otlp.json.http import trace_exporter as json_traces
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    class AccountOnSpans(SpanProcessor):
        def on_start(self, span: Any, parent_context: Any = None) -> None:
            span.set_attribute("enduser.id", ACCOUNT.get())

    resource = Resource.create({"service.name": "adapter-test-client"})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(AccountOnSpans())
    logger_provider = LoggerProvider(resource=resource)
    stream = LockedStream(args.file) if args.file else None
    if args.otlp:
        tracer_provider.add_span_processor(BatchSpanProcessor(
            OTLPSpanExporter(endpoint=f"{args.otlp}/v1/traces")))
        logger_provider.add_log_record_processor(BatchLogRecordProcessor(
            OTLPLogExporter(endpoint=f"{args.otlp}/v1/logs")))
    if args.otlp_json:
        tracer_provider.add_span_processor(BatchSpanProcessor(
            json_traces.OTLPSpanExporter(endpoint=f"{args.otlp_json}/v1/traces")))
    if stream is not None:
        tracer_provider.add_span_processor(BatchSpanProcessor(FileSpanExporter(stream=stream)))
        logger_provider.add_log_record_processor(BatchLogRecordProcessor(
            FileLogExporter(stream=stream)))
    OpenAIInstrumentor().instrument(tracer_provider=tracer_provider,
                                    logger_provider=logger_provider)

    client = openai.OpenAI(base_url=f"{args.base_url}/v1", api_key="unused", max_retries=0)
    with gzip.open(args.traffic, "rb") as f:
        traffic = [orjson.loads(line) for line in f]
    if args.limit:
        traffic = traffic[:args.limit]
    for i, request in enumerate(traffic):
        messages = ([{"role": "system", "content": request["system"]}]
                    if request.get("system") else []) + request["messages"]
        ACCOUNT.set(request["account_id"])
        keyed = client.with_options(api_key=f"sk-{request['account_id']}")
        if args.stream_every and i % args.stream_every == 0:
            for _ in keyed.chat.completions.create(
                    model=request["model"], messages=messages, stream=True,
                    stream_options={"include_usage": True}):
                pass
        else:
            keyed.chat.completions.create(model=request["model"], messages=messages)
    tracer_provider.force_flush()
    logger_provider.force_flush()
    tracer_provider.shutdown()
    logger_provider.shutdown()
    if stream is not None:
        stream.close()


if __name__ == "__main__":
    main()
