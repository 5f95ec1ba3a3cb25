"""Formats told from content, and whole files in memory (Spark's binaryFile rows) read in
the format they hold, with the same records and quarantine as from disk."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
import pytest

from distillguard.errors import InputError
from distillguard.logs import read_bytes
from distillguard.logs.adapters import SourceOptions, file_format, sniff_format
from tests.conftest import make_record, write_jsonl
from tests.logs.adapters.sources import content, read_all, span, traces, write_lines
from tests.logs.adapters.test_litellm_and_batch import batch_request, batch_response, payload


@pytest.mark.parametrize(("lines", "expected"), [
    ([make_record(0)], "native"),
    ([traces(span(0, content()))], "otlp"),
    ([payload(0)], "litellm"),
    ([batch_response("r1")], "openai-batch"),
    ([b"not json\n", b"[1]\n", {"unknown": True}, payload(0)], "litellm"),
])
def test_format_told_from_the_first_records(tmp_path: Path, lines: list[object],
                                            expected: str) -> None:
    path = write_lines(tmp_path / "a.jsonl.gz", lines)
    assert sniff_format(path)[0] == expected
    assert file_format(path, SourceOptions()) == expected


def test_files_with_no_format_to_tell(tmp_path: Path) -> None:
    assert file_format(write_lines(tmp_path / "u.jsonl", [{"foo": 1}]), SourceOptions()) is None
    blank = write_lines(tmp_path / "b.jsonl", [b"\n", b"garbage\n"])
    assert file_format(blank, SourceOptions()) == "native"  # its reader quarantines each line
    (tmp_path / "bad.jsonl.gz").write_bytes(b"\x1f\x8b not really gzip")
    assert file_format(tmp_path / "bad.jsonl.gz", SourceOptions()) == "native"
    assert file_format(tmp_path / "u.jsonl", SourceOptions("otlp")) == "otlp"
    with pytest.raises(InputError, match="unknown input format 'xml'"):
        SourceOptions("xml")


def _same(path: Path, options: SourceOptions = SourceOptions()) -> None:
    from_disk = read_all(path, options)
    rows, quarantined = [], []
    for chunk in read_bytes(path.read_bytes(), str(path), options):
        rows += chunk.batch.to_pylist()
        quarantined += chunk.quarantined
    assert (rows, quarantined) == (from_disk[0], from_disk[1])


def test_files_in_memory_read_as_from_disk(tmp_path: Path) -> None:
    _same(write_lines(tmp_path / "t.jsonl.gz", [traces(span(i, content(f"q{i}")))
                                                 for i in range(5)] + [b"{broken\n"]))
    _same(write_lines(tmp_path / "l.jsonl", [payload(0), payload(1, metadata={})]))
    _same(write_lines(tmp_path / "u.jsonl", [{"foo": 1}]))
    _same(write_jsonl(tmp_path / "n.jsonl", [make_record(0)]))
    _same(write_lines(tmp_path / "forced.jsonl", [make_record(0)]), SourceOptions("litellm"))
    whole = gzip.compress(b"".join(
        orjson.dumps(traces(span(i, content()))) + b"\n" for i in range(300)))
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    _same(cut)


def test_a_batch_file_in_memory_pairs_within_itself(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "log.jsonl", [batch_request("r1"), batch_response("r1")])
    chunks = list(read_bytes(path.read_bytes(), str(path), SourceOptions()))
    assert sum(c.batch.num_rows for c in chunks) == 1
    assert sum(c.not_exchanges for c in chunks) == 1
