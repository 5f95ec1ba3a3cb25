from __future__ import annotations

import gzip
from pathlib import Path

import orjson
import pyarrow as pa
import zstandard

from distillguard.logs import EXCHANGE_SCHEMA, read_file
from distillguard.logs.jsonl import read_jsonl
from tests.conftest import make_record, write_jsonl


def _read(path: Path, **kwargs: int) -> tuple[pa.Table, list]:
    chunks = list(read_jsonl(path, **kwargs))
    table = pa.Table.from_batches([c.batch for c in chunks], schema=EXCHANGE_SCHEMA)
    return table, [q for c in chunks for q in c.quarantined]


def test_valid_lines_become_one_schema_batch(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "ok.jsonl", [make_record(i) for i in range(5)])
    table, bad = _read(path)
    assert table.num_rows == 5
    assert bad == []
    assert table.column("source_line").to_pylist() == [1, 2, 3, 4, 5]
    assert table.column("ts").type == pa.timestamp("ms", tz="UTC")


def test_truncated_last_line_is_quarantined_with_its_number(tmp_path: Path) -> None:
    full = orjson.dumps(make_record(9))
    path = write_jsonl(tmp_path / "t.jsonl", [make_record(i) for i in range(3)],
                       trailing=full[: len(full) // 2])
    table, bad = _read(path)
    assert table.num_rows == 3
    assert [(q.source_line, q.code) for q in bad] == [(4, "invalid_json")]
    assert bad[0].raw == full[: len(full) // 2].decode()


def test_binary_garbage_is_quarantined_as_base64(tmp_path: Path) -> None:
    garbage = b"\x89PNG\r\n\x1a\x00\xff\xfe\x00\x01\x02"
    path = write_jsonl(tmp_path / "g.jsonl", [make_record(1), garbage + b"\n", make_record(2)])
    table, bad = _read(path)
    assert table.num_rows == 2
    codes = {q.code for q in bad}
    assert codes <= {"not_utf8", "invalid_json"} and "not_utf8" in codes
    assert all(q.raw_encoding in {"base64", "utf-8"} for q in bad)


def test_five_megabyte_line_is_read_whole(tmp_path: Path) -> None:
    big = "x" * (5 * 1024 * 1024)
    path = write_jsonl(tmp_path / "big.jsonl", [
        make_record(1, messages=[{"role": "user", "content": big}]), make_record(2)])
    table, bad = _read(path)
    assert bad == []
    assert len(table.column("messages")[0].as_py()[0]["content"]) == len(big)


def test_five_megabyte_bad_line_is_quarantined_whole(tmp_path: Path) -> None:
    big = b'{"request_id": "' + b"y" * (5 * 1024 * 1024)
    path = write_jsonl(tmp_path / "bigbad.jsonl", [make_record(1), big + b"\n"])
    table, bad = _read(path)
    assert table.num_rows == 1
    assert bad[0].raw_bytes == len(big) + 1
    assert len(bad[0].raw) == len(big)


def test_empty_file_yields_nothing(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"")
    table, bad = _read(path)
    assert table.num_rows == 0 and bad == []


def test_blank_lines_are_skipped_but_counted_in_line_numbers(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "b.jsonl", [make_record(1), b"\n", b"   \n", make_record(2)])
    table, bad = _read(path)
    assert bad == []
    assert table.column("source_line").to_pylist() == [1, 4]


def test_unknown_fields_survive(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "x.jsonl", [make_record(1, region="eu")])
    table, _ = _read(path)
    assert orjson.loads(table.column("extra")[0].as_py()) == {"region": "eu"}


def test_gzip_and_zstd_read_like_plain(tmp_path: Path) -> None:
    lines = b"".join(orjson.dumps(make_record(i)) + b"\n" for i in range(50))
    (tmp_path / "a.jsonl.gz").write_bytes(gzip.compress(lines))
    (tmp_path / "a.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(lines))
    for name in ("a.jsonl.gz", "a.jsonl.zst"):
        chunks = list(read_file(tmp_path / name))
        assert sum(c.batch.num_rows for c in chunks) == 50


def test_truncated_gzip_ends_file_with_one_quarantine_row(tmp_path: Path) -> None:
    lines = b"".join(orjson.dumps(make_record(i)) + b"\n" for i in range(2000))
    data = gzip.compress(lines)
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(data[: len(data) // 2])
    table, bad = _read(path)
    assert 0 < table.num_rows < 2000
    assert bad[-1].code == "corrupt_stream"


def test_resume_skips_lines_already_ingested(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "r.jsonl", [make_record(i) for i in range(10)])
    table, _ = _read(path, start_line=6)
    assert table.column("request_id").to_pylist() == ["r6", "r7", "r8", "r9"]


def test_batches_are_bounded_in_rows(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "many.jsonl", [make_record(i) for i in range(1000)])
    chunks = list(read_jsonl(path, batch_rows=17))
    assert max(c.batch.num_rows for c in chunks) <= 17
    assert sum(c.batch.num_rows for c in chunks) == 1000
