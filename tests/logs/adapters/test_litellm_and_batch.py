"""LiteLLM standard logging payloads and OpenAI batch lines read into exchange-log records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from distillguard.logs.adapters import SourceOptions, parse_field_map
from tests.logs.adapters.sources import read_all, write_lines


def payload(i: int = 0, **overrides: Any) -> dict[str, Any]:
    """A LiteLLM ``StandardLoggingPayload`` of a chat completion."""
    out: dict[str, Any] = {
        "id": f"chatcmpl-{i}", "call_type": "acompletion", "stream": False,
        "status": "success", "startTime": 1772467200.25 + i, "endTime": 1772467201.0 + i,
        "model": "gpt-4o-mini", "model_group": "model-b1", "api_base": "https://x",
        "metadata": {"user_api_key_hash": "hash-1", "user_api_key_user_id": f"user-{i % 2}",
                     "user_api_key_org_id": "org-1", "requester_ip_address": "198.51.100.4"},
        "messages": [{"role": "system", "content": "Be brief."},
                     {"role": "user", "content": [{"type": "text", "text": f"question {i}"}]}],
        "response": {"id": f"chatcmpl-{i}", "object": "chat.completion", "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "answer"}}]},
        "model_parameters": {"tools": [{"type": "function", "function": {"name": "search"}}]},
        "prompt_tokens": 20, "completion_tokens": 3, "total_tokens": 23,
        "response_cost": 0.0001, "end_user": None}
    out.update(overrides)
    return out


def test_litellm_payload_is_one_exchange(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "litellm.jsonl", [payload(0), payload(1)])
    records, quarantined, passed = read_all(path)
    assert quarantined == [] and passed == 0
    r = records[0]
    assert (r["request_id"], r["account_id"], r["model"], r["org_id"], r["api_key_id"]) == (
        "chatcmpl-0", "user-0", "model-b1", "org-1", "hash-1")
    assert r["ts"].timestamp() == 1772467200.25
    assert (r["system"], r["messages"], r["response"]) == (
        "Be brief.", [{"role": "user", "content": "question 0"}], "answer")
    assert (r["ip"], r["tools"], r["input_tokens"], r["output_tokens"]) == (
        "198.51.100.4", ["search"], 20, 3)


def test_litellm_calls_that_are_not_chat_are_passed_over(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "litellm.jsonl", [
        payload(0), payload(1, call_type="aembedding"), payload(2, call_type="image_generation")])
    records, quarantined, passed = read_all(path)
    assert (len(records), quarantined, passed) == (1, [], 2)


@pytest.mark.parametrize(("bad", "code", "words"), [
    (payload(1, metadata={}), "missing_field", "--map account_id="),
    (payload(1, startTime="soon"), "bad_timestamp", "ts"),
    (payload(1, messages=["not a message"]), "bad_content", "message 0"),
    (payload(1, messages=[]), "missing_field", "messages"),
    (payload(1, prompt_tokens=-4), "out_of_range", "input_tokens"),
])
def test_malformed_litellm_payloads_are_quarantined(tmp_path: Path, bad: dict[str, Any],
                                                    code: str, words: str) -> None:
    path = write_lines(tmp_path / "litellm.jsonl", [payload(0), bad])
    records, quarantined, _ = read_all(path)
    assert len(records) == 1
    (row,) = quarantined
    assert (row.source_line, row.code) == (2, code)
    assert words in row.reason


def test_litellm_account_from_a_mapped_key(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "litellm.jsonl", [
        payload(0, metadata={"user_api_key_alias": "team-blue"})])
    (r,), _, _ = read_all(path, SourceOptions(field_map=parse_field_map(
        ["account_id=metadata.user_api_key_alias"])))
    assert r["account_id"] == "team-blue"


def batch_request(custom_id: str, question: str = "q", **overrides: Any) -> dict[str, Any]:
    out = {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions",
           "body": {"model": "model-b1", "user": "acct-1",
                    "messages": [{"role": "user", "content": question}]}}
    out.update(overrides)
    return out


def batch_response(custom_id: str, answer: str = "a") -> dict[str, Any]:
    return {"id": f"batch_req_{custom_id}", "custom_id": custom_id, "error": None,
            "response": {"status_code": 200, "request_id": f"req-{custom_id}", "body": {
                "id": "chatcmpl", "created": 1772467200, "model": "model-b1",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}}],
                "usage": {"prompt_tokens": 5, "completion_tokens": 2}}}}


def test_batch_input_and_output_files_are_paired(tmp_path: Path) -> None:
    write_lines(tmp_path / "input.jsonl", [batch_request("r1", "one"), batch_request("r2", "two")])
    write_lines(tmp_path / "output.jsonl", [batch_response("r2", "deux"),
                                            batch_response("r1", "un")])
    records, quarantined, _ = read_all(tmp_path / "input.jsonl")
    assert quarantined == []
    assert [(r["request_id"], r["messages"][0]["content"], r["response"], r["input_tokens"],
             r["status"]) for r in records] == [("req-r1", "one", "un", 5, 200),
                                                ("req-r2", "two", "deux", 5, 200)]
    out_records, out_quarantined, passed = read_all(tmp_path / "output.jsonl")
    assert (out_records, out_quarantined, passed) == ([], [], 2)


def test_batch_lines_that_cannot_be_paired_are_quarantined(tmp_path: Path) -> None:
    write_lines(tmp_path / "input.jsonl", [batch_request("r1"), batch_request("lonely"),
                                           batch_request("twice"), batch_request("twice")])
    write_lines(tmp_path / "output.jsonl", [batch_response("r1"), batch_response("stray"),
                                            batch_response("twice")])
    records, quarantined, _ = read_all(tmp_path / "input.jsonl")
    assert [r["request_id"] for r in records] == ["req-r1"]
    assert [(q.source_line, q.code) for q in quarantined] == [
        (2, "missing_field"), (3, "missing_field"), (4, "missing_field")]
    assert "output file beside its input file" in quarantined[0].reason
    _, out_quarantined, _ = read_all(tmp_path / "output.jsonl")
    assert [(q.source_line, q.code) for q in out_quarantined] == [
        (2, "unpaired_response"), (3, "unpaired_response")]
    assert "no request of this folder" in out_quarantined[0].reason
    assert "several requests" in out_quarantined[1].reason


def test_batch_line_with_its_answer_and_responses_api(tmp_path: Path) -> None:
    both = {**batch_request("c1"), **{"response": batch_response("c1")["response"]}}
    responses = batch_request("c2", url="/v1/responses", body={
        "model": "model-b1", "user": "acct-2", "instructions": "Be brief.", "input": "hello"})
    embedding = batch_request("c3", url="/v1/embeddings", body={"model": "e", "input": "x"})
    not_object = batch_request("c4", body="text")
    path = write_lines(tmp_path / "log.jsonl", [both, responses, embedding, not_object])
    records, quarantined, passed = read_all(path)
    assert records[0]["response"] == "a" and passed == 1
    assert [(q.source_line, q.code) for q in quarantined] == [(2, "missing_field"),
                                                             (4, "wrong_type")]


def test_a_truncated_batch_output_file_pairs_what_it_holds(tmp_path: Path) -> None:
    import gzip

    write_lines(tmp_path / "input.jsonl", [batch_request(f"r{i}") for i in range(300)])
    whole = write_lines(tmp_path / "output.jsonl.gz",
                        [batch_response(f"r{i}") for i in range(300)]).read_bytes()
    (tmp_path / "output.jsonl.gz").write_bytes(whole[: len(whole) // 2])
    records, quarantined, _ = read_all(tmp_path / "input.jsonl")
    assert 0 < len(records) < 300
    assert {q.code for q in quarantined} == {"missing_field"}
    assert len(records) + len(quarantined) == 300
    _, out_quarantined, _ = read_all(tmp_path / "output.jsonl.gz")
    assert out_quarantined[-1].code == "corrupt_stream"
    assert gzip.decompress(whole).count(b"\n") == 300
