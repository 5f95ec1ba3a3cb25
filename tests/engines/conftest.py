"""A Java runtime for the tests that start Spark: the machine's, or one installed now."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator

import pytest

from distillguard.engines.spark_session import JAVA_PACKAGES, JavaRuntime, find_java
from distillguard.errors import EngineError
from tests.conftest import install_debian_package


def _java_home_of(package: str) -> str | None:
    """Where Debian's ``package`` put its runtime (``/usr/lib/jvm/NAME``)."""
    listed = subprocess.run(["dpkg", "-L", package], capture_output=True, text=True, check=False)
    found = re.search(r"^(/usr/lib/jvm/[^/\n]+)/bin/java$", listed.stdout, flags=re.MULTILINE)
    return found[1] if found else None


def _installed_java(package: str, env: pytest.MonkeyPatch) -> JavaRuntime:
    """The runtime apt-get just installed; through ``JAVA_HOME`` if it is not the one found first
    (an older ``JAVA_HOME``, a ``PATH`` without ``/usr/bin``)."""
    try:
        return find_java()
    except EngineError:
        home = _java_home_of(package)
        if home is None:
            pytest.fail(f"apt-get installed {package}, but dpkg -L lists no bin/java in it")
        env.setenv("JAVA_HOME", home)
        return find_java()


@pytest.fixture(scope="session")
def java_runtime() -> Iterator[JavaRuntime]:
    """Java 17+ for Spark: the machine's, or installed with apt-get when missing or too old."""
    try:
        runtime = find_java()
    except EngineError as missing:
        package = install_debian_package(JAVA_PACKAGES, f"Spark tests not run: {missing}")
        with pytest.MonkeyPatch.context() as env:
            yield _installed_java(package, env)
        return
    yield runtime
