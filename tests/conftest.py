from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"

# `make test` runs the suite on two workers (pytest-xdist). A group of tests runs whole
# on one worker: each test module is one, so its module fixtures are built once, and so
# are the modules whose paths start with one of these: the directories whose modules
# share a session fixture that simulates and scans traffic (built once per worker that
# needs it), and the Spark tests, each of which starts a JVM on both cores (two at once
# took 160 s where one after the other took 90 s each).
GROUPED_PATHS = ("tests/sim/", "tests/intel/", "tests/dashboard/", "tests/engines/test_spark_")


def xdist_group_of(nodeid: str) -> str:
    """The group of the test ``nodeid``: the prefix above its path starts with, else its file.

    >>> xdist_group_of("tests/sim/test_output.py::test_x[a::b]")
    'tests/sim/'
    >>> xdist_group_of("tests/gateway/test_proxy.py::test_y")
    'tests/gateway/test_proxy.py'
    """
    path = nodeid.split("::", 1)[0]
    return next((prefix for prefix in GROUPED_PATHS if path.startswith(prefix)), path)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """xdist's scheduler by scope, with the scopes above (its ``xdist_group`` marks are
    lost on pytest 9, which no longer reads the node id xdist rewrites)."""
    from xdist.scheduler import LoadScopeScheduling

    class ByGroup(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return xdist_group_of(nodeid)

    return ByGroup(config, log)


def make_record(i: int = 0, **overrides: Any) -> dict[str, Any]:
    """A valid exchange-log record; ``overrides`` replace or add fields (None removes)."""
    record: dict[str, Any] = {
        "request_id": f"r{i}",
        "ts": "2026-03-02T16:00:00Z",
        "account_id": f"acct-{i % 3}",
        "model": "model-b1",
        "messages": [{"role": "user", "content": f"question {i}"}],
        "ip": "203.0.113.7",
        "input_tokens": 12,
    }
    for key, value in overrides.items():
        if value is None:
            record.pop(key, None)
        else:
            record[key] = value
    return record


def write_jsonl(path: Path, records: list[Any], *, trailing: bytes = b"") -> Path:
    with open(path, "wb") as f:
        for r in records:
            f.write(r if isinstance(r, bytes) else orjson.dumps(r) + b"\n")
        f.write(trailing)
    return path


@pytest.fixture(scope="session")
def shared_corpora() -> Path:
    """The real prompt corpora (../shared/corpora) the simulator and replay upstream read."""
    path = SHARED / "corpora"
    if not path.is_dir():
        pytest.fail(f"the shared corpora are missing at {path}")
    return path


# Debian packages this run installed, named at the end of pytest's report (a worker's
# list reaches the report through xdist's ``workeroutput``).
INSTALLED: list[str] = []


def pytest_sessionfinish(session: pytest.Session) -> None:
    output = getattr(session.config, "workeroutput", None)
    if output is not None:
        output["debian_installed"] = list(INSTALLED)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    INSTALLED.extend(getattr(node, "workeroutput", {}).get("debian_installed", []))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if INSTALLED:
        terminalreporter.write_line(f"installed with apt-get for this run: {', '.join(INSTALLED)}")


def install_debian_package(packages: str | Sequence[str], missing: str) -> str:
    """Install the first of ``packages`` that apt-get can install; return its name.

    Tests that need a system program call this when it is missing (CI machines and
    new laptops start without them). ``missing`` is one line saying what is missing
    and how to install it by hand. Where installing is impossible (no apt-get; not
    root and no password-less sudo) the test is skipped with that line, which
    pytest's summary prints (``-ra``); an apt-get that fails fails the test. One
    install at a time on the machine (a file lock): the suite's workers may need the
    same package at once, and apt-get's lists have no lock timeout.
    """
    with open(Path(tempfile.gettempdir()) / "distillguard-tests-apt-get.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _install_debian_package(packages, missing)


def _install_debian_package(packages: str | Sequence[str], missing: str) -> str:
    names = [packages] if isinstance(packages, str) else list(packages)
    apt_get = shutil.which("apt-get")
    if apt_get is None:
        pytest.skip(f"{missing} [not installed by the tests: no apt-get here]")
    apt = [apt_get, "-q", "-y", "-o", "DPkg::Lock::Timeout=300"]
    if os.geteuid() != 0:
        sudo = shutil.which("sudo")
        if sudo is None or subprocess.run([sudo, "-n", "true"], capture_output=True,
                                          check=False).returncode != 0:
            pytest.skip(f"{missing} [not installed by the tests: not root and no password-less sudo]")
        apt = [sudo, "-n", "env", "DEBIAN_FRONTEND=noninteractive", *apt]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    said = ""
    for attempt in ("installed lists", "updated lists"):
        if attempt == "updated lists":
            subprocess.run([*apt, "update"], capture_output=True, check=False, env=env)
        for name in names:
            done = subprocess.run([*apt, "install", "--no-install-recommends", name], env=env,
                                  capture_output=True, text=True, errors="replace", check=False)
            if done.returncode == 0:
                INSTALLED.append(name)
                return name
            said = next((line for line in reversed(done.stderr.splitlines()) if line.strip()), said)
    pytest.fail(f"{missing} [apt-get could not install {' or '.join(names)}: {said}]")


def installed_path(package: str, pattern: str) -> str | None:
    """The first path of Debian's installed ``package`` (``dpkg -L``) that matches ``pattern``:
    where apt-get put a program when ``PATH`` does not reach it."""
    dpkg = shutil.which("dpkg") or "/usr/bin/dpkg"
    try:
        listed = subprocess.run([dpkg, "-L", package], capture_output=True, text=True, check=False)
    except OSError:
        return None
    found = re.search(f"^(?:{pattern})$", listed.stdout, flags=re.MULTILINE)
    return found[0] if found else None


def installed_program(binary: str, package: str, missing: str) -> str:
    """``binary``'s path, installing Debian's ``package`` with apt-get when it is not on
    ``PATH`` (``install_debian_package``: ``missing`` is its one-line reason to skip)."""
    found = shutil.which(binary)
    if found:
        return found
    install_debian_package(package, missing)
    found = shutil.which(binary) or installed_path(package, rf"/\S+/bin/{re.escape(binary)}")
    if not found:
        pytest.fail(f"apt-get installed {package}, but dpkg -L lists no bin/{binary} in it")
    return found
