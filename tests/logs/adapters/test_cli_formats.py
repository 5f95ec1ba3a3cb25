"""`ingest` and `scan` on other sources' files: formats told from content or named,
mappings, and the clear errors of a format that cannot be told or a bad option."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from distillguard.cli import app
from distillguard.engines.scan_job import ScanJob, run_scan_job
from distillguard.errors import InputError
from tests.conftest import make_record, write_jsonl
from tests.logs.adapters.sources import content, span, traces, write_lines
from tests.logs.adapters.test_litellm_and_batch import payload

runner = CliRunner()


def _ingest(tmp_path: Path, *args: str) -> dict[str, Any]:
    result = runner.invoke(app, ["ingest", *args, "--db", str(tmp_path / "s.duckdb"),
                                 "--json", "-"])
    assert result.exit_code == 0, result.output
    return orjson.loads(result.stdout)


def _mixed_folder(tmp_path: Path) -> Path:
    logs = tmp_path / "logs"
    logs.mkdir()
    write_jsonl(logs / "native.jsonl", [make_record(i) for i in range(3)])
    write_lines(logs / "traces.json", [traces(span(i, content(f"q{i}"))) for i in range(4)])
    write_lines(logs / "litellm.jsonl.gz", [payload(i) for i in range(2)])
    write_lines(logs / "weird.jsonl", [{"foo": 1}])
    write_lines(logs / "releases.json", [{"model": "m", "date": "2026-01-01"}])
    return logs


def test_one_folder_of_every_source_is_ingested_by_format(tmp_path: Path) -> None:
    summary = _ingest(tmp_path, str(_mixed_folder(tmp_path)))
    run = summary["run"]
    assert (run["inserted"], summary["exchanges"]) == (9, 9)
    assert run["files_unknown_format"] == [str(tmp_path / "logs" / "weird.jsonl")]
    assert run["files_unreadable"] == []
    assert run["quarantined_by_code"] == {"unknown_format": 1}
    assert [n["path"] for n in run["files_not_read"]] == [str(tmp_path / "logs" / "releases.json")]


def test_fields_no_source_carries_are_named(tmp_path: Path) -> None:
    write_lines(tmp_path / "t.jsonl", [traces(span(i, content(f"q{i}"))) for i in range(4)])
    summary = _ingest(tmp_path, str(tmp_path / "t.jsonl"))
    assert {"payment_fingerprint", "account_created", "ip"} <= set(summary["fields_missing"])
    assert "payment_links" in {s["signal"] for s in summary["signals_not_computed"]}


def test_a_named_format_reads_every_line_as_it(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "native.jsonl", [make_record(i) for i in range(3)])
    summary = _ingest(tmp_path, str(path), "--format", "otlp")
    assert summary["run"]["quarantined_by_code"] == {"not_otlp": 3}
    assert summary["exchanges"] == 0


def test_a_map_reads_the_account_from_another_place(tmp_path: Path) -> None:
    tenant = span(0, {**content(), "enduser.id": None, "tenant.id": "t-1"})
    path = write_lines(tmp_path / "t.jsonl", [traces(tenant)])
    summary = _ingest(tmp_path, str(path), "--map", "account_id=tenant.id")
    assert summary["exchanges"] == 1


def test_scan_of_files_in_no_known_format_is_a_one_line_error(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "weird.jsonl", [{"foo": 1}, {"bar": 2}])
    result = runner.invoke(app, ["scan", str(path), "--out", str(tmp_path / "f.json")])
    assert result.exit_code == 2
    message = " ".join(result.output.split())
    assert message.startswith("error: ")
    for name in ("native", "otlp", "litellm", "openai-batch", "--format"):
        assert name in message


def test_a_scan_job_of_files_in_no_known_format_is_refused(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "weird.jsonl", [{"foo": 1}])
    with pytest.raises(InputError, match="formats tried") as caught:
        run_scan_job(ScanJob([path], None, tmp_path / "f.json"))
    assert str(path) in str(caught.value)
    assert not (tmp_path / "f.json").exists()


def test_scan_names_the_files_in_no_known_format_beside_the_readable(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    write_lines(logs / "weird.jsonl", [{"foo": 1}])
    write_jsonl(logs / "native.jsonl", [make_record(i) for i in range(3)])
    findings, result = run_scan_job(ScanJob([logs], None, tmp_path / "f.json"))
    assert result.files_unknown_format == [str(logs / "weird.jsonl")]
    assert findings["input"]["exchanges"] == 3
    cli = runner.invoke(app, ["scan", str(logs), "--out", str(tmp_path / "g.json")])
    assert cli.exit_code == 0, cli.output
    assert "1 file(s) in no format distillguard can tell" in cli.output


def test_bad_format_and_map_options_are_one_line_errors(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", [make_record(0)])
    for args, words in ((["--format", "csv"], "unknown input format 'csv'"),
                        (["--map", "account_id"], "--map wants FIELD=PLACE"),
                        (["--map", "messages=x"], "'messages' is not a field")):
        result = runner.invoke(app, ["scan", str(path), "--out", str(tmp_path / "f.json"), *args])
        assert result.exit_code == 2, args
        assert words in " ".join(result.output.split())
