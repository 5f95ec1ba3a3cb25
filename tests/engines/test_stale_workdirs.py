"""A scan killed outright leaves its temporary store; the next scan removes it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from distillguard.engines.scan_job import OWNER_FILE, WORKDIR_PREFIX, remove_stale_workdirs


def _workdir(parent: Path, name: str, owner: str | None) -> Path:
    workdir = parent / f"{WORKDIR_PREFIX}{name}"
    workdir.mkdir()
    (workdir / "scan.duckdb").write_bytes(b"x" * 100)
    if owner is not None:
        (workdir / OWNER_FILE).write_text(owner)
    return workdir


def test_only_folders_of_ended_processes_are_removed(tmp_path: Path) -> None:
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True).stdout.strip()
    killed = _workdir(tmp_path, "killed", ended)
    running = _workdir(tmp_path, "running", str(os.getpid()))
    unowned = _workdir(tmp_path, "older-version", None)
    garbled = _workdir(tmp_path, "garbled", "not a pid")
    other = tmp_path / "someone-else"
    other.mkdir()
    assert remove_stale_workdirs(tmp_path) == [killed]
    assert not killed.exists()
    assert running.exists() and unowned.exists() and garbled.exists() and other.exists()
