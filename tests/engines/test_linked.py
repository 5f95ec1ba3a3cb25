"""Parquet inputs that fit the store are read in place, and the store holds what it held
when it re-encoded them."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from distillguard.engines import ExchangeStore
from distillguard.engines import store as store_module

MESSAGES = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
_QUARANTINE = "SELECT source_file, source_line, code, reason, raw FROM quarantine " \
              "ORDER BY source_file, source_line"


def _clean(n: int, *, start: int = 0, ts_type: pa.DataType = pa.timestamp("us", tz="UTC")
           ) -> pa.Table:
    first = 1772467200123456
    ts = pa.array([first + 1000 * i + 789 for i in range(n)], pa.int64())
    return pa.table({
        "request_id": pa.array([f"r{start + i}" for i in range(n)]),
        "ts": ts.cast(pa.timestamp("us", tz="UTC")).cast(ts_type, safe=False),
        "account_id": pa.array([f"a{i % 7}" for i in range(n)], pa.large_string()),
        "model": pa.array(["m"] * n),
        "messages": pa.array([[{"role": "user", "content": f"q{i}"}]
                              + [{"role": "assistant", "content": "a"}] * (i % 3)
                              for i in range(n)], MESSAGES),
        "input_tokens": pa.array([i % 50 for i in range(n)], pa.int32()),
        "verified": pa.array([i % 2 == 0 for i in range(n)]),
        "tools": pa.array([["search"] if i % 3 else None for i in range(n)],
                          pa.list_(pa.string())),
        "account_created": pa.array([1700000000000 + i for i in range(n)], pa.int64()),
    })


def _ingest(db: Path, files: list[Path]) -> tuple[pa.Table, list[tuple], list[str]]:
    with ExchangeStore(db) as store:
        report = store.ingest(files)
        table = store.con.sql("SELECT * FROM exchanges ORDER BY source_file, source_line"
                              ).to_arrow_table()
        quarantine = store.con.execute(_QUARANTINE).fetchall()
    return table, quarantine, report.files_stored_as_is


@pytest.mark.parametrize("ts_type", [pa.timestamp("us", tz="UTC"), pa.timestamp("ns"),
                                     pa.timestamp("ms"), pa.int64()])
def test_parquet_stored_as_is_reads_back_as_when_re_encoded(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ts_type: pa.DataType) -> None:
    table = _clean(5000, ts_type=ts_type)
    if pa.types.is_integer(ts_type):
        table = table.set_column(1, "ts", pa.array(
            [1772467200123 + i for i in range(5000)], pa.int64()))
    pq.write_table(table, tmp_path / "a.parquet", row_group_size=1024)
    linked, linked_quarantine, as_is = _ingest(tmp_path / "linked.duckdb",
                                               [tmp_path / "a.parquet"])
    assert as_is == [str((tmp_path / "a.parquet").resolve())]
    monkeypatch.setattr(store_module, "storable_as_is", lambda _: False)
    copied, copied_quarantine, as_is = _ingest(tmp_path / "copied.duckdb",
                                               [tmp_path / "a.parquet"])
    assert as_is == []
    assert linked.num_rows == 5000
    assert linked.equals(copied)
    assert linked_quarantine == copied_quarantine == []


def test_a_file_with_a_bad_row_or_a_known_id_is_re_encoded_not_linked(tmp_path: Path) -> None:
    bad = _clean(100)
    bad = bad.set_column(5, "input_tokens", pa.array([-1] + [1] * 99, pa.int32()))
    pq.write_table(bad, tmp_path / "bad.parquet")
    pq.write_table(_clean(50, start=1000), tmp_path / "first.parquet")
    pq.write_table(_clean(50, start=1040), tmp_path / "overlap.parquet")
    table, quarantine, as_is = _ingest(
        tmp_path / "s.duckdb",
        [tmp_path / "bad.parquet", tmp_path / "first.parquet", tmp_path / "overlap.parquet"])
    assert [Path(p).name for p in as_is] == ["first.parquet"]
    assert table.num_rows == 99 + 50 + 40
    assert [(Path(f).name, line, code) for f, line, code, *_ in quarantine] == [
        ("bad.parquet", 1, "out_of_range")] + [
        ("overlap.parquet", i, "duplicate_request_id") for i in range(1, 11)]


def test_linked_part_survives_the_input_and_a_run_killed_before_commit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "a.parquet"
    pq.write_table(_clean(300), log)
    db = tmp_path / "s.duckdb"

    def die(*_: object) -> None:
        raise KeyboardInterrupt

    with ExchangeStore(db) as store:
        monkeypatch.setattr(store, "_replace_quarantine", die)
        with pytest.raises(KeyboardInterrupt):
            store.ingest([log])
    monkeypatch.undo()
    with ExchangeStore(db) as store:
        assert not any(store.parts_dir.glob("linked-*"))
        assert store.con.execute("SELECT count(*) FROM exchanges").fetchone()[0] == 0
        assert store.ingest([log]).files_stored_as_is
    os.unlink(log)
    with ExchangeStore(db) as store:
        assert store.con.execute("SELECT count(*) FROM exchanges").fetchone()[0] == 300
        assert store.ingest([]).inserted == 0
