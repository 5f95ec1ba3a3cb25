"""`distillguard ingest` on awkward input: unreadable files, broken streams, values out of
range, blank lines, files a directory holds besides logs, a last line still being written."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
import zstandard
from typer.testing import CliRunner

from distillguard.cli import app
from tests.conftest import make_record, write_jsonl

runner = CliRunner()


def _ingest(tmp_path: Path, *logs: Path) -> dict[str, Any]:
    result = runner.invoke(app, ["ingest", *map(str, logs), "--db", str(tmp_path / "s.duckdb"),
                                 "--json", "-"])
    assert result.exit_code == 0, result.output
    return orjson.loads(result.stdout)


def _quarantine(summary: dict[str, Any]) -> list[dict[str, Any]]:
    path = summary["quarantine_file"]
    if path is None:
        return []
    return [orjson.loads(line) for line in Path(path).read_bytes().splitlines()]


def _as_unprivileged_reader() -> list[str]:
    """A command prefix under which file permissions apply: as root, the same user without
    the capabilities that bypass them."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.fail("setpriv (util-linux) is needed to test unreadable files as root")
    return [setpriv, "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search"]


def test_file_without_read_permission_is_quarantined_and_the_run_goes_on(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    write_jsonl(logs / "a.jsonl", [make_record(i) for i in range(3)])
    locked = write_jsonl(logs / "b.jsonl", [make_record(9)])
    write_jsonl(logs / "c.jsonl", [make_record(i) for i in range(3, 5)])
    locked.chmod(0)
    cli = Path(sys.executable).with_name("distillguard")
    proc = subprocess.run([*_as_unprivileged_reader(), str(cli), "ingest", str(logs), "--db",
                           str(tmp_path / "s.duckdb"), "--json", "-"],
                          capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()
    summary = orjson.loads(proc.stdout)
    assert summary["exchanges"] == 5
    rows = _quarantine(summary)
    assert [(r["source_file"], r["source_line"], r["code"]) for r in rows] == [
        (str(locked), 0, "unreadable")]
    assert "Permission denied" in rows[0]["reason"]
    assert summary["run"]["quarantined_by_code"] == {"unreadable": 1}


def test_dangling_symlink_and_fifo_named_like_logs_are_quarantined(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    write_jsonl(logs / "a.jsonl", [make_record(1)])
    (logs / "gone.jsonl").symlink_to(tmp_path / "rotated-away.jsonl")
    os.mkfifo(logs / "pipe.jsonl")
    summary = _ingest(tmp_path, logs)
    assert summary["exchanges"] == 1
    rows = {Path(r["source_file"]).name: r for r in _quarantine(summary)}
    assert set(rows) == {"rotated-away.jsonl", "pipe.jsonl"}  # a link is named by its target
    assert {(r["code"], r["source_line"]) for r in rows.values()} == {("unreadable", 0)}
    assert "gone.jsonl is a broken symbolic link" in rows["rotated-away.jsonl"]["reason"]
    assert "named pipe" in rows["pipe.jsonl"]["reason"]
    assert len(summary["run"]["files_unreadable"]) == 2


def test_file_that_becomes_readable_is_read_and_leaves_the_quarantine(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "late.jsonl").symlink_to(tmp_path / "target.jsonl")
    first = _ingest(tmp_path, logs)
    assert [r["code"] for r in _quarantine(first)] == ["unreadable"]
    write_jsonl(tmp_path / "target.jsonl", [make_record(i) for i in range(4)])
    second = _ingest(tmp_path, logs)
    assert second["exchanges"] == 4
    assert second["quarantined"] == 0


@pytest.mark.parametrize("suffix", [".jsonl.gz", ".jsonl.zst"])
def test_truncated_compressed_stream_says_after_which_line(tmp_path: Path, suffix: str) -> None:
    lines = b"".join(orjson.dumps(make_record(i)) + b"\n" for i in range(2000))
    data = gzip.compress(lines) if suffix == ".jsonl.gz" else \
        zstandard.ZstdCompressor().compress(lines)
    path = tmp_path / f"cut{suffix}"
    path.write_bytes(data[: len(data) // 2])
    summary = _ingest(tmp_path, path)
    stored = summary["exchanges"]
    assert 0 < stored < 2000
    rows = _quarantine(summary)
    assert [(r["code"], r["source_line"]) for r in rows] == [("corrupt_stream", stored + 1)]
    assert f"after line {stored}" in rows[0]["reason"]


def test_negative_tokens_and_far_future_times_are_out_of_range(tmp_path: Path) -> None:
    log = write_jsonl(tmp_path / "a.jsonl", [
        make_record(1, ts="2026-03-02T16:00:00Z"),
        make_record(2, ts="2150-01-01T00:00:00Z"),
        make_record(3, input_tokens=-5),
        make_record(4, output_tokens=-1),
        make_record(5, ts=5680281600000),  # 2150 in epoch milliseconds
        make_record(6, ts="2026-03-02T16:00:05Z"),
    ])
    summary = _ingest(tmp_path, log)
    assert summary["exchanges"] == 2
    assert (summary["from"], summary["to"]) == ("2026-03-02T16:00:00.000Z",
                                                "2026-03-02T16:00:05.000Z")
    rows = {r["source_line"]: r for r in _quarantine(summary)}
    assert {line: r["code"] for line, r in rows.items()} == {
        2: "out_of_range", 3: "out_of_range", 4: "out_of_range", 5: "out_of_range"}
    assert "ts" in rows[2]["reason"] and "latest allowed" in rows[2]["reason"]
    assert "input_tokens" in rows[3]["reason"] and "minimum 0" in rows[3]["reason"]
    assert "output_tokens" in rows[4]["reason"]


def test_blank_lines_are_counted_in_the_summary(tmp_path: Path) -> None:
    log = write_jsonl(tmp_path / "a.jsonl", [make_record(1), b"\n", b"  \t\n", make_record(2),
                                             b"\r\n"])
    summary = _ingest(tmp_path, log)
    assert summary["run"]["blank_lines"] == 3
    assert summary["exchanges"] == 2 and summary["quarantined"] == 0
    printed = runner.invoke(app, ["ingest", str(log), "--db", str(tmp_path / "t.duckdb")])
    assert "3 blank lines" in printed.output


def test_files_a_directory_holds_besides_logs_are_listed(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    (logs / ".cache").mkdir(parents=True)
    write_jsonl(logs / "a.jsonl", [make_record(1)])
    (logs / "notes.txt").write_text("hello")
    write_jsonl(logs / ".hidden.jsonl", [make_record(2)])
    write_jsonl(logs / ".cache" / "old.jsonl", [make_record(3)])
    (logs / "labels.jsonl").write_text('{"account_id": "a", "actor": null}\n')
    summary = _ingest(tmp_path, logs)
    assert summary["exchanges"] == 1
    skipped = {Path(s["path"]).name: s["why"] for s in summary["run"]["files_not_read"]}
    assert set(skipped) == {"notes.txt", ".hidden.jsonl", ".cache", "labels.jsonl"}
    assert "suffix" in skipped["notes.txt"]
    assert "hidden" in skipped[".hidden.jsonl"] and "hidden" in skipped[".cache"]
    assert "labels" in skipped["labels.jsonl"]
    printed = runner.invoke(app, ["ingest", str(logs), "--db", str(tmp_path / "t.duckdb")])
    # the console folds the long temporary path, a name sometimes across two lines
    unfolded = printed.output.replace("\n", "")
    assert "notes.txt" in unfolded and "not read" in unfolded


def test_partial_last_line_completed_later_is_stored_once_and_leaves_quarantine(
        tmp_path: Path) -> None:
    full = orjson.dumps(make_record(3))
    log = write_jsonl(tmp_path / "live.jsonl", [make_record(i) for i in range(3)],
                      trailing=full[:40])
    first = _ingest(tmp_path, log)
    assert first["exchanges"] == 3
    assert [(r["source_line"], r["code"]) for r in _quarantine(first)] == [(4, "invalid_json")]
    with open(log, "ab") as f:
        f.write(full[40:] + b"\n" + orjson.dumps(make_record(4)) + b"\n")
    second = _ingest(tmp_path, log)
    assert second["exchanges"] == 5
    assert second["quarantined"] == 0 and second["quarantine_file"] is None
    assert second["run"]["inserted"] == 2


def test_summary_names_parquet_files_stored_as_they_are(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [make_record(i) for i in range(20)]
    table = pa.Table.from_pylist(rows)
    table = table.set_column(1, "ts", table.column("ts").cast(pa.timestamp("ms", tz="UTC")))
    pq.write_table(table, tmp_path / "a.parquet")
    summary = _ingest(tmp_path, tmp_path / "a.parquet")
    assert summary["exchanges"] == 20
    assert summary["run"]["files_stored_as_is"] == [str((tmp_path / "a.parquet").resolve())]
