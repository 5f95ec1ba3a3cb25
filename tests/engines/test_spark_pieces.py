"""The Spark engine's pieces that run without a JVM: decoding, translation, option errors."""

from __future__ import annotations

import builtins
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from distillguard.behavior import account_sql
from distillguard.cli import app
from distillguard.engines.scan_job import ScanJob, run_scan_job
from distillguard.engines.spark_input import INPUT_ROW_SCHEMA, decode_files
from distillguard.engines.spark_session import import_pyspark
from distillguard.engines.spark_sql import to_spark_sql
from distillguard.errors import EngineError, InputError
from distillguard.linkage import template_sql
from distillguard.verdict import campaign_sql

GOOD = (b'{"request_id": "r1", "ts": "2026-02-01T10:00:00Z", "account_id": "a1", "model": "m",'
        b' "messages": [{"role": "user", "content": "hello"}]}')


def _files(*named: tuple[str, bytes]) -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict({"path": [n for n, _ in named],
                                       "content": [c for _, c in named]})


def test_decoding_keeps_exchanges_and_quarantines_the_rest_with_file_and_line() -> None:
    batches = list(decode_files(iter([_files(("file:/logs/a.jsonl", GOOD + b"\nnot json\n"))])))
    rows = pa.Table.from_batches(batches, schema=INPUT_ROW_SCHEMA).to_pylist()
    good = [r for r in rows if r["quarantine_code"] is None]
    bad = [r for r in rows if r["quarantine_code"] is not None]
    assert [r["request_id"] for r in good] == ["r1"]
    assert good[0]["source_file"] == "/logs/a.jsonl"
    assert [(r["source_file"], r["source_line"], r["quarantine_code"]) for r in bad] == [
        ("/logs/a.jsonl", 2, "invalid_json")]
    assert bad[0]["quarantine_raw"] == "not json"


def test_a_truncated_compressed_file_is_quarantined_not_fatal() -> None:
    batches = list(decode_files(iter([_files(("file:/logs/b.jsonl.gz", b"\x1f\x8b\x08\x00junk"))])))
    rows = pa.Table.from_batches(batches, schema=INPUT_ROW_SCHEMA).to_pylist()
    assert [r["quarantine_code"] for r in rows] == ["corrupt_stream"]


def test_listed_directories_skip_our_own_outputs() -> None:
    named = [("hdfs://nn/logs/labels.jsonl", GOOD), ("hdfs://nn/logs/x.quarantine.jsonl", GOOD),
             ("hdfs://nn/logs/s.duckdb.parts/p.parquet", b"PAR1"), ("hdfs://nn/logs/notes.txt", GOOD),
             ("hdfs://nn/logs/day1.jsonl", GOOD)]
    batches = list(decode_files(iter([_files(*named)]), listed_directories=True))
    rows = pa.Table.from_batches(batches, schema=INPUT_ROW_SCHEMA).to_pylist()
    assert [r["source_file"] for r in rows] == ["hdfs://nn/logs/day1.jsonl"]


@pytest.mark.parametrize("module", [account_sql, template_sql, campaign_sql])
def test_every_query_translates_to_spark_sql(module: Any) -> None:
    for name in module.__all__:
        text = to_spark_sql(getattr(module, name))
        assert text.upper().lstrip().startswith(("SELECT", "WITH")), name
        assert "$" not in text, f"{name}: parameters must become :name for Spark"


def test_duckdb_hash_becomes_spark_64_bit_hash() -> None:
    """Spark's own ``hash`` is 32 bits: owners counted by it would collide."""
    text = to_spark_sql(template_sql.TEMPLATE_USES_SQL)
    assert "XXHASH64(owner)" in text
    assert "HASH(" not in text.replace("XXHASH64(", "")


def test_spark_refuses_a_store(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="--db"):
        run_scan_job(ScanJob([tmp_path], tmp_path / "s.duckdb", tmp_path / "f.json",
                             engine="spark"))


def test_a_missing_path_fails_before_spark_starts(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    def no_spark(*_: Any) -> None:
        raise AssertionError("Spark must not start for a path that does not exist")

    monkeypatch.setattr("distillguard.engines.spark_session.spark_session", no_spark)
    with pytest.raises(InputError, match="no such file"):
        run_scan_job(ScanJob([tmp_path / "nope"], None, tmp_path / "f.json", engine="spark"))


def test_missing_pyspark_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_pyspark(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("pyspark"):
            raise ImportError("No module named 'pyspark'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pyspark)
    with pytest.raises(EngineError, match=r"distillguard\[spark\]"):
        import_pyspark()


@pytest.mark.parametrize(("args", "message"), [
    (["--engine", "flink"], "unknown engine"),
    (["--engine", "spark", "--spark-conf", "no-equals-sign"], "KEY=VALUE"),
])
def test_bad_engine_options_fail_clearly(tmp_path: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["scan", str(tmp_path), "--out", str(tmp_path / "f.json"),
                                      *args])
    assert result.exit_code == 2
    assert message in result.output


def test_unreadable_local_files_get_the_embedded_engines_record(tmp_path: Path) -> None:
    from distillguard.engines import ExchangeStore
    from distillguard.engines.spark_input import local_log_files

    (tmp_path / "a.jsonl").write_bytes(GOOD + b"\n")
    (tmp_path / "gone.jsonl").symlink_to(tmp_path / "missing.jsonl")
    readable, unreadable = local_log_files([str(tmp_path)])
    assert readable == [str((tmp_path / "a.jsonl").resolve())]
    with ExchangeStore(tmp_path / "s.duckdb") as store:
        store.ingest([tmp_path / "a.jsonl", tmp_path / "gone.jsonl"])
        stored = store.con.execute(
            "SELECT source_file, source_line, code, reason FROM quarantine").fetchall()
    assert [(q.source_file, q.source_line, q.code, q.reason) for q in unreadable] == stored
