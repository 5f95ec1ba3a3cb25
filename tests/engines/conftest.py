"""A Java runtime for the tests that start Spark: the machine's, or one installed now."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from distillguard.engines.spark_session import JAVA_PACKAGES, JavaRuntime, find_java
from distillguard.errors import EngineError
from tests.conftest import install_debian_package, installed_path


def _installed_java(package: str, env: pytest.MonkeyPatch) -> JavaRuntime:
    """The runtime apt-get just installed; through ``JAVA_HOME`` if it is not the one found first
    (an older ``JAVA_HOME``, a ``PATH`` without ``/usr/bin``)."""
    try:
        return find_java()
    except EngineError:
        java = installed_path(package, r"/usr/lib/jvm/[^/]+/bin/java")
        if java is None:
            pytest.fail(f"apt-get installed {package}, but dpkg -L lists no bin/java in it")
        env.setenv("JAVA_HOME", str(Path(java).parent.parent))
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
