from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from distillguard.logs import EXCHANGE_SCHEMA, read_file
from tests.conftest import make_record

MESSAGES = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))


def _write(path: Path, columns: dict[str, pa.Array]) -> Path:
    pq.write_table(pa.table(columns), path)
    return path


def _read(path: Path) -> tuple[pa.Table, list]:
    chunks = list(read_file(path))
    table = pa.Table.from_batches([c.batch for c in chunks], schema=EXCHANGE_SCHEMA)
    return table, [q for c in chunks for q in c.quarantined]


def _base(n: int) -> dict[str, pa.Array]:
    return {
        "request_id": pa.array([f"r{i}" for i in range(n)]),
        "ts": pa.array(["2026-03-02T16:00:00Z"] * n),
        "account_id": pa.array(["a"] * n),
        "model": pa.array(["m"] * n),
        "messages": pa.array([[{"role": "user", "content": f"q{i}"}] for i in range(n)], MESSAGES),
    }


def test_parquet_written_from_jsonl_records_reads_back(tmp_path: Path) -> None:
    table = pa.Table.from_pylist([make_record(i) for i in range(4)])
    pq.write_table(table, tmp_path / "x.parquet")
    out, bad = _read(tmp_path / "x.parquet")
    assert bad == []
    assert out.column("request_id").to_pylist() == ["r0", "r1", "r2", "r3"]
    assert out.column("input_tokens").to_pylist() == [12] * 4


def test_compatible_types_are_cast(tmp_path: Path) -> None:
    cols = _base(3)
    cols["ts"] = pa.array([1772467200000] * 3, pa.int64())
    cols["input_tokens"] = pa.array([1, 2, 3], pa.int32())
    cols["account_created"] = pa.array([1_700_000_000_000_000] * 3, pa.timestamp("us"))
    out, bad = _read(_write(tmp_path / "c.parquet", cols))
    assert bad == []
    assert out.column("input_tokens").type == pa.int64()
    assert out.column("ts")[0].as_py().isoformat() == "2026-03-02T16:00:00+00:00"


def test_wrong_column_type_quarantines_rows_that_have_a_value(tmp_path: Path) -> None:
    cols = _base(3)
    cols["input_tokens"] = pa.array(["1", None, "3"])
    out, bad = _read(_write(tmp_path / "w.parquet", cols))
    assert out.column("request_id").to_pylist() == ["r1"]
    assert [(q.source_line, q.code) for q in bad] == [(1, "wrong_type"), (3, "wrong_type")]


def test_null_in_required_column_is_quarantined(tmp_path: Path) -> None:
    cols = _base(3)
    cols["account_id"] = pa.array(["a", None, "c"])
    out, bad = _read(_write(tmp_path / "n.parquet", cols))
    assert out.num_rows == 2
    assert bad[0].source_line == 2 and "account_id" in bad[0].reason


def test_missing_required_column_quarantines_every_row(tmp_path: Path) -> None:
    cols = _base(2)
    del cols["model"]
    out, bad = _read(_write(tmp_path / "m.parquet", cols))
    assert out.num_rows == 0
    assert {q.code for q in bad} == {"missing_field"} and len(bad) == 2


def test_bad_message_role_and_unparseable_ts(tmp_path: Path) -> None:
    cols = _base(3)
    cols["messages"] = pa.array([[{"role": "user", "content": "a"}],
                                 [{"role": "wizard", "content": "b"}],
                                 []], MESSAGES)
    cols["ts"] = pa.array(["2026-03-02T16:00:00Z", "2026-03-02T16:00:00Z", "not a time"])
    out, bad = _read(_write(tmp_path / "b.parquet", cols))
    assert out.column("request_id").to_pylist() == ["r0"]
    assert {q.source_line for q in bad} == {2, 3}


def test_extra_columns_are_kept(tmp_path: Path) -> None:
    cols = _base(2)
    cols["region"] = pa.array(["eu", "us"])
    out, _ = _read(_write(tmp_path / "e.parquet", cols))
    assert out.column("extra").to_pylist() == ['{"region":"eu"}', '{"region":"us"}']


def test_file_that_is_not_parquet_is_one_quarantine_row(tmp_path: Path) -> None:
    path = tmp_path / "fake.parquet"
    path.write_bytes(b"this is not parquet at all")
    out, bad = _read(path)
    assert out.num_rows == 0
    assert [q.code for q in bad] == ["corrupt_stream"]


def test_negative_tokens_and_far_future_times_are_out_of_range(tmp_path: Path) -> None:
    cols = _base(4)
    cols["ts"] = pa.array(["2026-03-02T16:00:00Z", "2150-01-01T00:00:00Z",
                           "2026-03-02T16:00:00Z", "2026-03-02T16:00:00Z"])
    cols["input_tokens"] = pa.array([1, 2, -3, None], pa.int32())
    cols["asn"] = pa.array([64500, None, None, 5_000_000_000], pa.int64())
    out, bad = _read(_write(tmp_path / "r.parquet", cols))
    assert out.column("request_id").to_pylist() == ["r0"]
    assert [(q.source_line, q.code) for q in bad] == [
        (2, "out_of_range"), (3, "out_of_range"), (4, "out_of_range")]
    assert "2150-01-01T00:00:00Z" in bad[0].reason and "latest allowed" in bad[0].reason
    assert "-3, below the minimum 0" in bad[1].reason
    assert "above the maximum 4294967295" in bad[2].reason
