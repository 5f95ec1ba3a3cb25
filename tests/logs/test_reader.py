from __future__ import annotations

from pathlib import Path

import pytest

from distillguard.errors import InputError
from distillguard.logs import discover_log_files, read_exchanges
from tests.conftest import make_record, write_jsonl


def test_empty_directory_has_no_files(tmp_path: Path) -> None:
    assert discover_log_files([tmp_path]) == []
    assert list(read_exchanges([tmp_path])) == []


def test_missing_path_is_a_clear_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        discover_log_files([tmp_path / "nope"])


def test_directory_takes_log_files_only_and_skips_own_outputs(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    write_jsonl(tmp_path / "a.jsonl", [make_record(1)])
    write_jsonl(tmp_path / "sub" / "b.jsonl", [make_record(2)])
    write_jsonl(tmp_path / "store.duckdb.quarantine.jsonl", [make_record(3)])
    (tmp_path / "labels.jsonl").write_text('{"account_id": "a", "actor": null}\n')
    (tmp_path / "store.duckdb.parts").mkdir()
    write_jsonl(tmp_path / "store.duckdb.parts" / "c.jsonl", [make_record(4)])
    (tmp_path / "notes.txt").write_text("hello")
    found = [p.name for p in discover_log_files([tmp_path])]
    assert found == ["a.jsonl", "b.jsonl"]


def test_same_file_named_twice_is_read_once(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", [make_record(1)])
    assert len(discover_log_files([path, tmp_path])) == 1
