"""OpenTelemetry GenAI spans in OTLP JSON files, as exchange-log records.

A file holds one ``ExportTraceServiceRequest`` (``resourceSpans``) or
``ExportLogsServiceRequest`` (``resourceLogs``) JSON object per line, as the
Collector's file exporter, the SDK's OTLP JSON file exporter and ``distillguard
collect`` write them. Each span of a chat operation (``gen_ai.operation.name`` of
``chat``, ``text_completion`` or ``generate_content``) is one exchange; other spans
(HTTP, databases, embeddings, tool executions) are passed over and counted.

The conversation comes from, in this order:

1. the span's ``gen_ai.input.messages``, ``gen_ai.output.messages`` and
   ``gen_ai.system_instructions`` (JSON text, or structured values);
2. a log record ``gen_ai.client.inference.operation.details`` of the span, with the
   same attributes (structured);
3. per-message events, as span events or log records of the span:
   ``gen_ai.system.message``, ``gen_ai.user.message``, ``gen_ai.assistant.message``,
   ``gen_ai.tool.message`` (body or attributes ``content``) and ``gen_ai.choice``
   (``message``), in time order;
4. the oldest forms: events ``gen_ai.content.prompt`` / ``gen_ai.content.completion``
   (attributes ``gen_ai.prompt`` / ``gen_ai.completion``, JSON), or indexed attributes
   ``gen_ai.prompt.N.role`` / ``gen_ai.prompt.N.content`` / ``gen_ai.completion.N.content``.

Log records reach a file separately from their spans (their own export batches), so a
span whose content is not on the span waits for its log records until the one with the
answer, at most until the end of the file. A content record whose span is not in the
file is quarantined (``no_span``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import orjson

from distillguard.errors import RecordError
from distillguard.logs.adapters.genai_content import (
    Conversation,
    chat_message_text,
    conversation_of_chat,
    conversation_of_parts,
    decode_json_value,
    tool_names,
)
from distillguard.logs.adapters.lines import Converted, RawText
from distillguard.logs.adapters.mapping import (
    OTLP_FIELDS,
    RESOURCE_PREFIX,
    FieldMap,
    missing_account_error,
)

__all__ = ["CHAT_OPERATIONS", "CONTENT_ATTRIBUTES", "HAS_IMAGE_ATTRIBUTE", "REQUEST_ID_ATTRIBUTE",
           "TOOLS_ATTRIBUTE", "TOOL_DEFINITIONS", "OtlpConverter",
           "any_value", "attribute_map", "attributes_list", "export_shape_problem",
           "to_any_value"]

CHAT_OPERATIONS = frozenset({"chat", "text_completion", "generate_content"})
INPUT, OUTPUT, SYSTEM = "gen_ai.input.messages", "gen_ai.output.messages", \
    "gen_ai.system_instructions"
CONTENT_ATTRIBUTES = (INPUT, OUTPUT, SYSTEM)
DETAILS_EVENT = "gen_ai.client.inference.operation.details"
MESSAGE_EVENTS = frozenset({"gen_ai.system.message", "gen_ai.user.message",
                            "gen_ai.assistant.message", "gen_ai.tool.message", "gen_ai.choice"})
PROMPT_EVENTS = frozenset({"gen_ai.content.prompt", "gen_ai.content.completion"})
CONTENT_EVENTS = MESSAGE_EVENTS | PROMPT_EVENTS | {DETAILS_EVENT}
REQUEST_ID_ATTRIBUTE = "distillguard.request_id"
# The tools and the image flag: the conventions' tool definitions (JSON, opt-in), else
# the names and flag the gateway writes.
TOOL_DEFINITIONS = "gen_ai.tool.definitions"
TOOLS_ATTRIBUTE, HAS_IMAGE_ATTRIBUTE = "distillguard.tools", "distillguard.has_image"
_INDEXED = re.compile(r"^gen_ai\.(prompt|completion)\.(\d+)\.(role|content)$")
_NANOS_PER_MS = 1_000_000


def any_value(value: Any) -> Any:
    """An OTLP JSON ``AnyValue`` as a plain value (``intValue`` comes as text in JSON).

    >>> any_value({"intValue": "12"}), any_value({"arrayValue": {"values": [{"boolValue": True}]}})
    (12, [True])
    >>> any_value({"kvlistValue": {"values": [{"key": "role", "value": {"stringValue": "user"}}]}})
    {'role': 'user'}
    """
    if not isinstance(value, dict) or not value:
        return None
    if "stringValue" in value:
        return value["stringValue"]
    if "intValue" in value:
        try:
            return int(value["intValue"])
        except (TypeError, ValueError):
            return value["intValue"]
    if "boolValue" in value:
        return value["boolValue"]
    if "doubleValue" in value:
        return value["doubleValue"]
    if "arrayValue" in value:
        return [any_value(v) for v in (value["arrayValue"] or {}).get("values") or []]
    if "kvlistValue" in value:
        return attribute_map((value["kvlistValue"] or {}).get("values"))
    if "bytesValue" in value:
        return value["bytesValue"]
    return None


def attribute_map(items: Any) -> dict[str, Any]:
    """OTLP JSON attributes (a list of ``{key, value}``) as a dict."""
    if not isinstance(items, list):
        return {}
    return {item["key"]: any_value(item.get("value")) for item in items
            if isinstance(item, dict) and isinstance(item.get("key"), str)}


@dataclass(slots=True)
class _Event:
    """A content event of a span (a span event or a log record), as name and body."""

    time: int
    name: str
    body: dict[str, Any]


@dataclass(slots=True)
class _Held:
    """A span waiting for its content; ``line`` is where it was, ``raw`` its text."""

    line: int
    span: dict[str, Any]
    attributes: dict[str, Any]
    resource: dict[str, Any]
    raw: RawText


@dataclass(slots=True)
class _Orphans:
    """Content log records of a span not seen yet: their events, first line and text."""

    line: int
    emit: bool
    raw: RawText
    events: list[_Event] = field(default_factory=list)


def _event_body(name: str, body: Any, attributes: dict[str, Any]) -> dict[str, Any]:
    """The content of an event: its body (log records), else its attributes (span events,
    which have no body; some instrumentations put the body as JSON in
    ``gen_ai.event.content``)."""
    if isinstance(body, dict) and body:
        return {**attributes, **body}
    if isinstance(attributes.get("gen_ai.event.content"), str):
        decoded = decode_json_value(attributes["gen_ai.event.content"], f"{name} content")
        if isinstance(decoded, dict):
            return decoded
    return attributes


def _nanos(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _has_inline_content(attributes: dict[str, Any], events: list[_Event]) -> bool:
    return INPUT in attributes or "gen_ai.prompt.0.content" in attributes or any(
        e.name in CONTENT_EVENTS for e in events)


def _complete(events: list[_Event]) -> bool:
    """Whether a span's content records include the answer (the last thing emitted)."""
    return any(e.name in (DETAILS_EVENT, "gen_ai.choice", "gen_ai.content.completion")
               for e in events)


def _conversation(attributes: dict[str, Any], events: list[_Event]) -> Conversation:
    """The conversation of a span from its attributes and its content events."""
    details = next((e.body for e in events if e.name == DETAILS_EVENT), None)
    for source in (attributes, details):
        if source and INPUT in source:
            return conversation_of_parts(decode_json_value(source[INPUT], INPUT),
                                         decode_json_value(source.get(OUTPUT), OUTPUT),
                                         decode_json_value(source.get(SYSTEM), SYSTEM))
    ordered = sorted(events, key=lambda e: e.time)
    if any(e.name in MESSAGE_EVENTS for e in ordered):
        return _conversation_of_message_events(ordered)
    prompt = next((e.body.get("gen_ai.prompt") for e in ordered
                   if e.name == "gen_ai.content.prompt"), None)
    if prompt is not None:
        completion = next((e.body.get("gen_ai.completion") for e in ordered
                           if e.name == "gen_ai.content.completion"), None)
        answer = decode_json_value(completion, "gen_ai.completion")
        if isinstance(answer, list):
            answer = next((a for a in answer if isinstance(a, dict)), None)
        return conversation_of_chat(decode_json_value(prompt, "gen_ai.prompt"), answer)
    return _conversation_of_indexed(attributes)


def _conversation_of_message_events(events: list[_Event]) -> Conversation:
    conversation = Conversation()
    for event in events:
        body = event.body
        if event.name == "gen_ai.choice":
            if conversation.response is None and body.get("index", 0) in (0, "0", None):
                message = body.get("message")
                message = decode_json_value(message, "gen_ai.choice message")
                conversation.response = chat_message_text(message) if isinstance(
                    message, dict) else None
            continue
        role = body.get("role") or event.name.split(".")[1]
        conversation.add(role, chat_message_text(body, conversation))
    return conversation


def _conversation_of_indexed(attributes: dict[str, Any]) -> Conversation:
    """``gen_ai.prompt.N.role`` / ``.content`` and ``gen_ai.completion.N.content``."""
    found: dict[tuple[str, int], dict[str, Any]] = {}
    for key, value in attributes.items():
        m = _INDEXED.match(key)
        if m:
            found.setdefault((m.group(1), int(m.group(2))), {})[m.group(3)] = value
    prompts = [found[k] for k in sorted(k for k in found if k[0] == "prompt")]
    answer = found.get(("completion", 0))
    return conversation_of_chat(prompts, answer)


class OtlpConverter:
    """Turns OTLP JSON lines into exchange-log records (see the module docstring)."""

    def __init__(self, field_map: FieldMap | None = None) -> None:
        self.field_map = field_map or FieldMap(OTLP_FIELDS)
        self._used = self.field_map.used_places() | set(CONTENT_ATTRIBUTES) | {
            REQUEST_ID_ATTRIBUTE, "gen_ai.operation.name", TOOL_DEFINITIONS, TOOLS_ATTRIBUTE,
            HAS_IMAGE_ATTRIBUTE}
        self.not_exchanges = 0
        self._held: dict[tuple[str, str], _Held] = {}
        self._orphans: dict[tuple[str, str], _Orphans] = {}

    def held_from(self) -> int | None:
        return min((h.line for h in self._held.values()), default=None)

    def feed(self, line: int, obj: Any, raw: bytes, emit: bool) -> Iterator[Converted]:
        if not isinstance(obj, dict) or not ("resourceSpans" in obj or "resourceLogs" in obj):
            if emit:
                yield Converted(line, None, RecordError(
                    "not_otlp", "line is not an OTLP export request (no resourceSpans or "
                    "resourceLogs)"), raw)
            return
        problem = export_shape_problem(obj)
        if problem is not None:
            if emit:
                yield Converted(line, None, RecordError("not_otlp", problem), raw)
            return
        for resource_logs in _list(obj.get("resourceLogs")):
            yield from self._take_logs(line, resource_logs, emit)
        for resource_spans in _list(obj.get("resourceSpans")):
            resource = attribute_map((resource_spans.get("resource") or {}).get("attributes"))
            resource_text = {"attributes": attributes_list(resource)}
            for scope_spans in _list(resource_spans.get("scopeSpans")):
                for span in _list(scope_spans.get("spans")):
                    if emit:
                        yield from self._take_span(line, span, resource, resource_text,
                                                   scope_spans)

    def finish(self) -> Iterator[Converted]:
        held, self._held = self._held, {}
        for key, h in sorted(held.items(), key=lambda kv: kv[1].line):
            orphans = self._orphans.pop(key, None)
            yield self._convert(h, orphans.events if orphans else [])
        orphans, self._orphans = self._orphans, {}
        for (trace_id, span_id), o in orphans.items():
            if o.emit:
                yield Converted(o.line, None, RecordError(
                    "no_span", f"GenAI content log record(s) of span {span_id} (trace "
                    f"{trace_id}), which is not in this file: the span is needed for the "
                    "account, model and time"), o.raw)

    def _take_logs(self, line: int, resource_logs: dict[str, Any], emit: bool
                   ) -> Iterator[Converted]:
        """Take in content log records; a held span whose answer has come is released."""
        for scope_logs in _list(resource_logs.get("scopeLogs")):
            for record in _list(scope_logs.get("logRecords")):
                attributes = attribute_map(record.get("attributes"))
                name = record.get("eventName") or attributes.get("event.name")
                key = (str(record.get("traceId") or ""), str(record.get("spanId") or ""))
                if name not in CONTENT_EVENTS or not all(key):
                    self.not_exchanges += emit
                    continue
                time = _nanos(record.get("timeUnixNano")) or _nanos(
                    record.get("observedTimeUnixNano")) or 0
                event = _Event(time, name, _event_body(name, any_value(record.get("body")),
                                                       attributes))
                orphans = self._orphans.get(key)
                if orphans is None:
                    orphans = self._orphans[key] = _Orphans(line, emit, partial(orjson.dumps,
                                                                                record))
                orphans.events.append(event)
                if key in self._held and _complete(orphans.events):
                    del self._orphans[key]
                    yield self._convert(self._held.pop(key), orphans.events)

    def _take_span(self, line: int, span: Any, resource: dict[str, Any],
                   resource_text: dict[str, Any], scope_spans: dict[str, Any]
                   ) -> Iterator[Converted]:
        if not isinstance(span, dict):
            yield Converted(line, None, RecordError("not_otlp", "a span is not an object"),
                            orjson.dumps(span))
            return
        attributes = attribute_map(span.get("attributes"))
        operation = attributes.get("gen_ai.operation.name")
        if operation not in CHAT_OPERATIONS and not (
                operation is None and "gen_ai.prompt.0.content" in attributes):
            self.not_exchanges += 1
            return
        # Written out only if the span is quarantined.
        raw = partial(orjson.dumps, {"resource": resource_text,
                                     "scope": scope_spans.get("scope"), "span": span})
        held = _Held(line, span, attributes, resource, raw)
        key = (str(span.get("traceId") or ""), str(span.get("spanId") or ""))
        events = [_Event(_nanos(e.get("timeUnixNano")) or 0, str(e.get("name")),
                         _event_body(str(e.get("name")), None, attribute_map(e.get("attributes"))))
                  for e in _list(span.get("events"))]
        orphans = self._orphans.get(key)
        if orphans is not None and _complete(orphans.events):
            del self._orphans[key]
            events += orphans.events
        elif not _has_inline_content(attributes, events) and all(key):
            self._held[key] = held
            return
        yield self._convert(held, events)

    def _convert(self, held: _Held, events: list[_Event]) -> Converted:
        try:
            return Converted(held.line, self._record(held, events), None, held.raw)
        except RecordError as exc:
            return Converted(held.line, None, exc, held.raw)

    def _record(self, held: _Held, events: list[_Event]) -> dict[str, Any]:
        span, attributes, resource = held.span, held.attributes, held.resource

        def lookup(place: str) -> Any:
            if place.startswith(RESOURCE_PREFIX):
                return resource.get(place[len(RESOURCE_PREFIX):])
            return attributes.get(place)

        record = self.field_map.pick(lookup)
        if "account_id" not in record:
            raise missing_account_error(self.field_map, "the span")
        start = _nanos(span.get("startTimeUnixNano"))
        if start is None:
            raise RecordError("bad_timestamp", "the span has no startTimeUnixNano")
        trace_id, span_id = span.get("traceId"), span.get("spanId")
        request_id = attributes.get(REQUEST_ID_ATTRIBUTE) or (
            f"{trace_id}:{span_id}" if trace_id and span_id else None)
        conversation = _conversation(attributes, events)
        if not conversation.messages:
            raise RecordError("missing_field", "required field 'messages' is missing: the span "
                              "carries no message content (turn content capture on in the "
                              "instrumentation: OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_"
                              "CONTENT)")
        if attributes.get(HAS_IMAGE_ATTRIBUTE) is True:
            conversation.has_image = True
        record.update(request_id=request_id, ts=start // _NANOS_PER_MS,
                      tools=_tools(attributes),
                      **{k: v for k, v in conversation.fields().items() if v is not None})
        record["otel"] = {"trace_id": trace_id, "span_id": span_id, "span_name": span.get("name"),
                          "service_name": resource.get("service.name"),
                          "attributes": {k: v for k, v in attributes.items()
                                         if k not in self._used and not _INDEXED.match(k)}}
        return record


_NESTING = (("resourceSpans", "scopeSpans", "spans"), ("resourceLogs", "scopeLogs", "logRecords"))


def export_shape_problem(obj: dict[str, Any]) -> str | None:
    """Why an export request's nesting is not lists of objects, or None when it is (a
    single span that is not an object is quarantined on its own)."""
    for resources_key, scopes_key, items_key in _NESTING:
        resources = obj.get(resources_key, [])
        if not isinstance(resources, list) or not all(isinstance(r, dict) for r in resources):
            return f"'{resources_key}' is not a list of objects"
        for resource in resources:
            scopes = resource.get(scopes_key, [])
            if not isinstance(scopes, list) or not all(
                    isinstance(s, dict) and isinstance(s.get(items_key, []), list)
                    for s in scopes):
                return f"'{scopes_key}' is not a list of objects with a list '{items_key}'"
    return None


def _tools(attributes: dict[str, Any]) -> Any:
    """The names of the tools a span's request defined, or None."""
    definitions = decode_json_value(attributes.get(TOOL_DEFINITIONS), TOOL_DEFINITIONS)
    return tool_names(definitions) if definitions is not None else attributes.get(TOOLS_ATTRIBUTE)


def _list(value: Any) -> Iterable[Any]:
    return value if isinstance(value, list) else ()


def attributes_list(attributes: dict[str, Any]) -> list[dict[str, Any]]:
    """Plain attributes back as OTLP JSON ``{key, value}`` items (strings, numbers, lists)."""
    return [{"key": k, "value": to_any_value(v)} for k, v in attributes.items()]


def to_any_value(value: Any) -> dict[str, Any]:
    """A plain value as an OTLP JSON ``AnyValue``.

    >>> to_any_value(3), to_any_value(["a"])
    ({'intValue': '3'}, {'arrayValue': {'values': [{'stringValue': 'a'}]}})
    """
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, list | tuple):
        return {"arrayValue": {"values": [to_any_value(v) for v in value]}}
    if isinstance(value, dict):
        return {"kvlistValue": {"values": attributes_list(value)}}
    return {"stringValue": "" if value is None else str(value)}

