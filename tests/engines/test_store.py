from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from distillguard.engines import ExchangeStore, store_summary
from tests.conftest import make_record, write_jsonl


def _count(store: ExchangeStore, sql: str = "SELECT count(*) FROM exchanges") -> int:
    return store.con.execute(sql).fetchone()[0]


def test_ingest_then_reingest_adds_nothing(tmp_path: Path) -> None:
    log = write_jsonl(tmp_path / "a.jsonl", [make_record(i) for i in range(100)])
    with ExchangeStore(tmp_path / "s.duckdb") as store:
        first = store.ingest([log])
        second = store.ingest([log])
        assert (first.inserted, second.inserted) == (100, 0)
        assert second.files_skipped == [str(log)]
        assert _count(store) == 100


def test_changed_file_is_reread_and_old_lines_count_as_present(tmp_path: Path) -> None:
    log = write_jsonl(tmp_path / "grow.jsonl", [make_record(i) for i in range(10)])
    with ExchangeStore(tmp_path / "s.duckdb") as store:
        store.ingest([log])
        write_jsonl(log, [make_record(i) for i in range(15)])
        report = store.ingest([log])
        assert (report.inserted, report.already_present, report.quarantined_total) == (5, 10, 0)


def test_duplicate_request_id_is_quarantined_with_where_first_seen(tmp_path: Path) -> None:
    a = write_jsonl(tmp_path / "a.jsonl", [make_record(1), make_record(2), make_record(1)])
    b = write_jsonl(tmp_path / "b.jsonl", [make_record(2, model="other")])
    with ExchangeStore(tmp_path / "s.duckdb") as store:
        report = store.ingest([a, b])
        assert report.inserted == 2
        assert report.quarantined["duplicate_request_id"] == 2
        rows = store.con.execute(
            "SELECT source_file, source_line, reason FROM quarantine ORDER BY source_file"
        ).fetchall()
    assert rows[0][0].endswith("a.jsonl") and rows[0][1] == 3 and "line 1" in rows[0][2]
    assert rows[1][0].endswith("b.jsonl") and "a.jsonl:2" in rows[1][2]


def test_quarantine_is_stored_and_exported(tmp_path: Path) -> None:
    log = write_jsonl(tmp_path / "q.jsonl", [make_record(1), b"{oops\n", b"\xff\xfe\n"])
    with ExchangeStore(tmp_path / "s.duckdb") as store:
        store.ingest([log])
        summary = store_summary(store.con)
        n = store.export_quarantine(tmp_path / "q.out.jsonl")
    assert summary["exchanges"] == 1 and summary["quarantined"] == 2 == n
    lines = (tmp_path / "q.out.jsonl").read_text().splitlines()
    assert '"source_line":2' in lines[0] and '"code":"invalid_json"' in lines[0]


def test_rereading_a_file_does_not_repeat_quarantine_rows(tmp_path: Path) -> None:
    log = write_jsonl(tmp_path / "q.jsonl", [make_record(1), b"{oops\n"])
    with ExchangeStore(tmp_path / "s.duckdb") as store:
        store.ingest([log])
        write_jsonl(log, [make_record(1), b"{oops\n", make_record(2)])
        store.ingest([log])
        assert _count(store, "SELECT count(*) FROM quarantine") == 1


def test_summary_counts_accounts_models_and_range(tmp_path: Path) -> None:
    records = [make_record(i, ts=1772467200000 + i * 1000, model=f"m{i % 2}") for i in range(6)]
    log = write_jsonl(tmp_path / "a.jsonl", records)
    with ExchangeStore(tmp_path / "s.duckdb") as store:
        store.ingest([log])
        summary = store_summary(store.con)
    assert summary["accounts"] == 3
    assert summary["models"] == {"m0": 3, "m1": 3}
    assert summary["from"] == "2026-03-02T16:00:00.000Z"
    assert summary["to"] == "2026-03-02T16:00:05.000Z"


def test_parquet_and_jsonl_land_in_one_table(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "a.jsonl", [make_record(i) for i in range(3)])
    pq.write_table(pa.Table.from_pylist([make_record(i) for i in range(3, 6)]),
                   tmp_path / "b.parquet")
    with ExchangeStore(tmp_path / "s.duckdb") as store:
        store.ingest([tmp_path / "a.jsonl", tmp_path / "b.parquet"])
        assert _count(store) == 6


KILL_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    import distillguard.engines.store as store_module
    from distillguard.engines import ExchangeStore
    from distillguard.engines.parts import PartWriter

    store_module.COMMIT_ROWS = 1000  # one commit per reader batch
    owner, name = {"mid_slice": (ExchangeStore, "_drop_duplicates"),
                   "part_written": (PartWriter, "finish")}[sys.argv[3]]
    original = getattr(owner, name)
    calls = 0

    def run_then_die(*args):
        global calls
        calls += 1
        result = original(*args)
        if calls == 4:  # inside the fourth commit, before it commits
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    setattr(owner, name, run_then_die)
    with ExchangeStore(sys.argv[1]) as store:
        store.ingest([Path(sys.argv[2])])
""")


@pytest.mark.parametrize("where", ["mid_slice", "part_written"])
@pytest.mark.slow
def test_kill_9_mid_ingest_leaves_a_consistent_resumable_store(tmp_path: Path, where: str) -> None:
    n = 80_000  # five reader batches, so the fourth commit is mid-file
    log = write_jsonl(tmp_path / "big.jsonl", [make_record(i) for i in range(n)])
    db = tmp_path / "s.duckdb"
    proc = subprocess.run([sys.executable, "-c", KILL_SCRIPT, str(db), str(log), where],
                          capture_output=True, timeout=120)
    assert proc.returncode == -9, proc.stderr.decode()
    with ExchangeStore(db) as store:
        stored = _count(store)
        lines_done, done = store.con.execute(
            "SELECT lines_done, done FROM ingested_files").fetchone()
        assert not done and 0 < stored == lines_done < n
        assert _count(store, "SELECT max(source_line) FROM exchanges") == lines_done
        assert _count(store, "SELECT count(*) FROM exchange_ids") == stored
        on_disk = sorted(p.name for p in store.parts_dir.glob("part-*"))
        assert on_disk == sorted(p.name for p in store.part_files())
        report = store.ingest([log])
        assert report.inserted == n - stored
        assert _count(store) == n
        assert _count(store, "SELECT count(DISTINCT request_id) FROM exchanges") == n
