"""Finding the Java runtime Spark will start: JAVA_HOME first, then PATH, version 17 or newer.

Each test puts fake ``java`` scripts in a temporary PATH or JAVA_HOME; none starts a JVM.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from distillguard.cli import app
from distillguard.engines.spark_session import (
    SparkOptions,
    find_java,
    parse_java_version,
    spark_session,
)
from distillguard.errors import EngineError

HOW = "sudo apt-get install -y openjdk-17-jre-headless"


def fake_java(bin_dir: Path, *lines: str, exit_code: int = 0) -> Path:
    """A ``java`` that prints ``lines`` on stderr for ``-version``, as real runtimes do."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    java = bin_dir / "java"
    said = "".join(f"echo '{line}' >&2\n" for line in lines)
    java.write_text(f'#!/bin/sh\n[ "$1" = -version ] || exit 64\n{said}exit {exit_code}\n')
    java.chmod(0o755)
    return java


@pytest.mark.parametrize(("output", "expected"), [
    ('openjdk version "17.0.15" 2025-04-15\nOpenJDK Runtime Environment', (17, "17.0.15")),
    ('openjdk version "21" 2023-09-19', (21, "21")),
    ('openjdk version "23-ea" 2024-09-17', (23, "23-ea")),
    ('java version "1.8.0_392"\nJava(TM) SE Runtime Environment', (8, "1.8.0_392")),
    ('openjdk version "11.0.22" 2024-01-16', (11, "11.0.22")),
    ('Picked up JAVA_TOOL_OPTIONS: -Xmx1g\nopenjdk version "17.0.2" 2022-01-18', (17, "17.0.2")),
    ("Error: could not open `/opt/jdk/lib/jvm.cfg'", None),
    ("", None),
])
def test_java_version_is_read_from_what_java_prints(output: str,
                                                    expected: tuple[int, str] | None) -> None:
    assert parse_java_version(output) == expected


def test_java_17_or_newer_on_path_is_accepted(tmp_path: Path) -> None:
    java = fake_java(tmp_path / "bin", 'openjdk version "21.0.3" 2024-04-16')
    runtime = find_java({"PATH": str(tmp_path / "bin")})
    assert (runtime.java, runtime.major, runtime.version) == (str(java), 21, "21.0.3")


@pytest.mark.parametrize(("line", "shown"), [
    ('java version "1.8.0_392"', "Java 1.8.0_392"),
    ('openjdk version "11.0.22" 2024-01-16', "Java 11.0.22"),
])
def test_an_old_java_is_one_line_naming_it_and_the_fix(tmp_path: Path, line: str,
                                                       shown: str) -> None:
    java = fake_java(tmp_path / "bin", line)
    with pytest.raises(EngineError) as caught:
        find_java({"PATH": str(tmp_path / "bin")})
    message = str(caught.value)
    assert "\n" not in message
    assert f"{java} is {shown}" in message
    assert "Java 17 or newer" in message
    assert HOW in message


def test_no_java_anywhere_says_where_it_looked_and_how_to_install(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(EngineError) as caught:
        find_java({"PATH": str(tmp_path / "empty")})
    message = str(caught.value)
    assert "\n" not in message
    assert "no java on PATH, JAVA_HOME not set" in message
    assert HOW in message


def test_java_home_comes_before_path_as_in_sparks_launcher(tmp_path: Path) -> None:
    fake_java(tmp_path / "path", 'openjdk version "17.0.15" 2025-04-15')
    old = fake_java(tmp_path / "jdk8" / "bin", 'java version "1.8.0_392"')
    env = {"PATH": str(tmp_path / "path"), "JAVA_HOME": str(tmp_path / "jdk8")}
    with pytest.raises(EngineError, match=f"{old} is Java 1.8.0_392"):
        find_java(env)
    fake_java(tmp_path / "jdk21" / "bin", 'openjdk version "21" 2023-09-19')
    assert find_java({**env, "JAVA_HOME": str(tmp_path / "jdk21")}).major == 21


def test_a_java_home_without_java_is_named(tmp_path: Path) -> None:
    fake_java(tmp_path / "path", 'openjdk version "17.0.15" 2025-04-15')
    env = {"PATH": str(tmp_path / "path"), "JAVA_HOME": str(tmp_path / "nowhere")}
    with pytest.raises(EngineError, match=f"JAVA_HOME={tmp_path / 'nowhere'} has no bin/java"):
        find_java(env)


@pytest.mark.parametrize(("lines", "exit_code", "said"), [
    (("Error: could not find libjava.so",), 1, "exit 1: Error: could not find libjava.so"),
    (("not a version",), 0, "exit 0: not a version"),
    ((), 0, "exit 0: nothing"),
])
def test_a_java_that_fails_or_says_no_version_is_one_line(tmp_path: Path, lines: tuple[str, ...],
                                                          exit_code: int, said: str) -> None:
    fake_java(tmp_path / "bin", *lines, exit_code=exit_code)
    with pytest.raises(EngineError) as caught:
        find_java({"PATH": str(tmp_path / "bin")})
    assert said in str(caught.value)
    assert "\n" not in str(caught.value)


def _no_java(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.delenv("JAVA_HOME", raising=False)


def test_spark_does_not_start_without_java(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import pyspark.sql

    def no_jvm(*_: object) -> None:
        raise AssertionError("the JVM must not be started without Java")

    _no_java(tmp_path, monkeypatch)
    monkeypatch.setattr(pyspark.sql.SparkSession.Builder, "getOrCreate", no_jvm)
    with pytest.raises(EngineError, match="none was found"):
        spark_session(SparkOptions("local[1]"))


def test_scan_on_spark_without_java_is_one_line_and_exit_code_2(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    logs = tmp_path / "logs.jsonl"
    logs.write_text('{"request_id": "r1", "ts": "2026-02-01T10:00:00Z", "account_id": "a1",'
                    ' "model": "m", "messages": [{"role": "user", "content": "hi"}]}\n')
    _no_java(tmp_path, monkeypatch)
    result = CliRunner().invoke(app, ["scan", "--engine", "spark", str(logs),
                                      "--out", str(tmp_path / "f.json")], terminal_width=80)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: Spark needs Java 17 or newer and none was found")
    assert HOW in lines[0]
    assert not (tmp_path / "f.json").exists()
