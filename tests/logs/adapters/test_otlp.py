"""OTLP JSON GenAI spans read into exchange-log records, and what is quarantined."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from distillguard.logs import read_file
from distillguard.logs.adapters import SourceOptions, parse_field_map
from distillguard.logs.adapters.lines import read_converted
from distillguard.logs.adapters.otlp import OtlpConverter
from distillguard.logs.jsonl import open_jsonl
from tests.logs.adapters.sources import (
    content,
    log_event,
    logs,
    read_all,
    span,
    traces,
    write_lines,
)


def test_span_with_content_attributes_is_one_exchange(tmp_path: Path) -> None:
    attrs = {**content("What is 2+2?", "4", system="Be brief."),
             "gen_ai.usage.input_tokens": 12, "gen_ai.usage.output_tokens": 1,
             "gen_ai.conversation.id": "conv-1", "client.address": "203.0.113.7",
             "user_agent.original": "curl/8", "http.response.status_code": 200}
    path = write_lines(tmp_path / "traces.jsonl", [traces(span(4, attrs))])
    records, quarantined, passed = read_all(path)
    assert quarantined == [] and passed == 0
    (r,) = records
    assert r["request_id"] == f"{4:032x}:{5:016x}"
    assert r["ts"] == datetime(2026, 3, 2, 16, 0, 4, tzinfo=UTC)
    assert (r["account_id"], r["model"], r["system"]) == ("acct-1", "model-b1", "Be brief.")
    assert r["messages"] == [{"role": "user", "content": "What is 2+2?"}]
    assert (r["response"], r["input_tokens"], r["output_tokens"]) == ("4", 12, 1)
    assert (r["conversation_id"], r["ip"], r["user_agent"], r["status"]) == (
        "conv-1", "203.0.113.7", "curl/8", 200)
    extra = orjson.loads(r["extra"])["otel"]
    assert extra["service_name"] == "app" and extra["span_name"] == "chat model-b1"


def test_older_span_events_give_the_conversation(tmp_path: Path) -> None:
    def event(name: str, at: int, **attrs: object) -> dict[str, object]:
        from distillguard.logs.adapters.otlp import attributes_list

        return {"name": name, "timeUnixNano": str(at), "attributes": attributes_list(attrs)}

    events = [event("gen_ai.system.message", 1, content="Be brief."),
              event("gen_ai.user.message", 2, content="hi"),
              event("gen_ai.assistant.message", 3, content="hello"),
              event("gen_ai.user.message", 4, content="2+2?"),
              event("gen_ai.choice", 5, index=0,
                    message=orjson.dumps({"role": "assistant", "content": "4"}).decode())]
    path = write_lines(tmp_path / "t.jsonl", [traces(span(0, events=events))])
    (r,), quarantined, _ = read_all(path)
    assert quarantined == []
    assert r["system"] == "Be brief." and r["response"] == "4"
    assert [m["content"] for m in r["messages"]] == ["hi", "hello", "2+2?"]


def test_oldest_indexed_attributes_give_the_conversation(tmp_path: Path) -> None:
    attrs = {"gen_ai.operation.name": None, "gen_ai.prompt.0.role": "system",
             "gen_ai.prompt.0.content": "Be brief.", "gen_ai.prompt.1.role": "user",
             "gen_ai.prompt.1.content": "2+2?", "gen_ai.completion.0.role": "assistant",
             "gen_ai.completion.0.content": "4"}
    path = write_lines(tmp_path / "t.jsonl", [traces(span(0, attrs))])
    (r,), quarantined, _ = read_all(path)
    assert quarantined == []
    assert (r["system"], r["messages"], r["response"]) == (
        "Be brief.", [{"role": "user", "content": "2+2?"}], "4")


def test_content_log_records_exported_apart_join_their_span(tmp_path: Path) -> None:
    """Log records come in their own export batches, before or after their span's."""
    early, late = span(1), span(2)
    details = {"gen_ai.input.messages": [{"role": "user", "parts": [
        {"type": "text", "content": "late question"}]}],
        "gen_ai.output.messages": [{"role": "assistant", "parts": [
            {"type": "text", "content": "late answer"}]}]}
    path = write_lines(tmp_path / "t.jsonl", [
        logs(log_event(early, "gen_ai.user.message", {"content": "early question"}),
             log_event(early, "gen_ai.choice", {"index": 0, "message": {"content": "early"}},
                       at=5)),
        traces(early, late),
        logs(log_event(late, "gen_ai.client.inference.operation.details", details))])
    records, quarantined, _ = read_all(path)
    assert quarantined == []
    assert {r["messages"][0]["content"]: r["response"] for r in records} == {
        "early question": "early", "late question": "late answer"}


def test_other_spans_and_log_records_are_passed_over_and_counted(tmp_path: Path) -> None:
    http = span(1, {"gen_ai.operation.name": None, "http.request.method": "POST"})
    embed = span(2, {"gen_ai.operation.name": "embeddings"})
    record = {"timeUnixNano": "1", "body": {"stringValue": "an app log line"}}
    path = write_lines(tmp_path / "t.jsonl", [traces(http, embed, span(3, content())),
                                              logs(record)])
    records, quarantined, passed = read_all(path)
    assert (len(records), quarantined, passed) == (1, [], 3)


@pytest.mark.parametrize(("bad", "code", "words"), [
    (span(1, {**content(), "enduser.id": None}), "missing_field", "--map account_id="),
    (span(1, content(), startTimeUnixNano="yesterday"), "bad_timestamp", "startTimeUnixNano"),
    (span(1, {"gen_ai.input.messages": "[{not json"}), "bad_content", "not valid JSON"),
    (span(1, {"gen_ai.input.messages": '["a string"]'}), "bad_content", "not an object"),
    (span(1, {**content(), "gen_ai.request.model": None}), "missing_field", "'model'"),
    (span(1, {**content(), "gen_ai.usage.input_tokens": "many"}), "wrong_type",
     "input_tokens"),
    ("a span that is a string", "not_otlp", "not an object"),
])
def test_malformed_spans_are_quarantined_with_line_and_reason(
        tmp_path: Path, bad: object, code: str, words: str) -> None:
    good = span(0, content())
    path = write_lines(tmp_path / "t.jsonl", [traces(good), traces(good | {"spanId": "e" * 16},
                                                                   bad)])
    records, quarantined, _ = read_all(path)
    assert len(records) == 2
    (row,) = quarantined
    assert (row.source_file, row.source_line, row.code) == (str(path), 2, code)
    assert words in row.reason


def test_span_without_content_waits_then_says_how_to_capture_it(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "t.jsonl", [traces(span(0)), traces(span(1, content()))])
    records, (row,), _ = read_all(path)
    assert len(records) == 1
    assert (row.source_line, row.code) == (1, "missing_field")
    assert "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT" in row.reason


def test_content_without_its_span_is_quarantined(tmp_path: Path) -> None:
    lost = span(9)
    path = write_lines(tmp_path / "t.jsonl", [
        traces(span(0, content())), logs(log_event(lost, "gen_ai.user.message", {"content": "x"}))])
    records, (row,), _ = read_all(path)
    assert len(records) == 1
    assert (row.source_line, row.code) == (2, "no_span")


def test_lines_that_are_not_otlp_requests_are_quarantined(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "t.jsonl", [
        traces(span(0, content())), b'{"resourceSpans": [\n', b"[1, 2]\n",
        {"resourceSpans": "not a list"}, b"\n"])
    records, quarantined, _ = read_all(path, SourceOptions("otlp"))
    assert len(records) == 1
    assert [(q.source_line, q.code) for q in quarantined] == [
        (2, "invalid_json"), (3, "not_otlp"), (4, "not_otlp")]
    assert "'resourceSpans' is not a list" in quarantined[2].reason


def test_account_read_from_the_place_a_map_names(tmp_path: Path) -> None:
    tenant = span(0, {**content(), "enduser.id": None})
    path = write_lines(tmp_path / "t.jsonl", [traces(tenant, resource={"tenant.id": "t-7"})])
    (r,), _, _ = read_all(path, SourceOptions(field_map=parse_field_map(
        ["account_id=tenant.id,resource.tenant.id"])))
    assert r["account_id"] == "t-7"
    _, (row,), _ = read_all(path, SourceOptions(field_map=parse_field_map(
        ["account_id=no.such.attribute"])))
    assert row.code == "missing_field" and "no.such.attribute" in row.reason


def test_truncated_gzip_keeps_every_whole_line_before_the_break(tmp_path: Path) -> None:
    lines = [traces(span(i, content(f"q{i}"))) for i in range(200)]
    whole = write_lines(tmp_path / "t.jsonl.gz", lines).read_bytes()
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    records, quarantined, _ = read_all(cut)
    assert 0 < len(records) < 200
    assert [r["messages"][0]["content"] for r in records] == [
        f"q{i}" for i in range(len(records))]
    assert quarantined[-1].code == "corrupt_stream"
    assert quarantined[-1].source_line == len(records) + 1
    assert len(read_all(tmp_path / "t.jsonl.gz")[0]) == 200
    assert gzip.decompress(whole).count(b"\n") == 200


def test_records_written_as_spans_read_back_the_same(tmp_path: Path) -> None:
    """What the gateway exports (``otlp_spans``) is read back field for field."""
    from distillguard.logs.adapters.otlp_spans import exchange_span, traces_request
    from tests.conftest import make_record, write_jsonl

    full = make_record(
        1, ts=1772467200123, system="Be brief.", org_id="org-1", api_key_id="key-1",
        account_created="2026-01-05T00:00:00Z", account_tier="pro", verified=True,
        payment_fingerprint="pf-9", asn=64500, country="DE", user_agent="sdk/1",
        client_fingerprint="t13d", tools=["search"], has_image=True, conversation_id="c-1",
        response="answer", reasoning="thinking", output_tokens=3, status=200,
        messages=[{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                  {"role": "tool", "content": "{\"x\": 1}"}, {"role": "user", "content": "c"}])
    bare = make_record(2, ts=1772467201000)
    native = write_jsonl(tmp_path / "native.jsonl", [full, bare])
    spans = [exchange_span({**r, "api": "openai", "added_ms": 1.5, "upstream_ms": 20},
                           extra=["api", "added_ms"]) for r in (full, bare)]
    otlp = write_lines(tmp_path / "spans.jsonl", [traces_request(spans, {"service.name": "gw"})])
    (want, _, _), (got, quarantined, _) = read_all(native), read_all(otlp)
    assert quarantined == []
    for w, g in zip(want, got, strict=True):
        own = ("extra", "source_file", "source_line")
        assert {k: v for k, v in g.items() if k not in own} == {
            k: v for k, v in w.items() if k not in own}
    attributes = orjson.loads(got[0]["extra"])["otel"]["attributes"]
    assert attributes["distillguard.gateway.added_ms"] == 1.5
    assert attributes["gen_ai.provider.name"] == "openai"


def test_a_waiting_span_is_released_when_its_answer_comes(tmp_path: Path) -> None:
    """Spans wait for content log records only until the answer's record: the resume
    point (``last_line``) moves on with them, and memory does not grow with the file."""
    lines: list[object] = []
    for i in range(6):
        lines.append(traces(span(i)))
        lines.append(logs(log_event(span(i), "gen_ai.client.inference.operation.details", {
            "gen_ai.input.messages": [{"role": "user", "parts": [
                {"type": "text", "content": f"q{i}"}]}],
            "gen_ai.output.messages": []})))
    path = write_lines(tmp_path / "t.jsonl", lines)
    stream, raw = open_jsonl(path)
    with raw, stream:
        chunks = list(read_converted(stream, raw, str(path), OtlpConverter(), batch_rows=2))
    assert [c.batch.num_rows for c in chunks if c.batch.num_rows] == [2, 2, 2]
    assert [c.last_line for c in chunks if c.batch.num_rows] == [4, 8, 12]
    assert sum(c.batch.num_rows for c in read_file(path)) == 6
