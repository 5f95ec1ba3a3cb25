"""Start (or connect to) Spark for the scale-out engine, with the settings that matter.

``pyspark`` is an optional extra (``pip install 'distillguard[spark]'``); it is
imported only here and in the other ``spark_*`` modules, so the default engine
never needs a JVM.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from distillguard.errors import EngineError

__all__ = [
    "JAVA_MIN_MAJOR",
    "JAVA_PACKAGES",
    "SPARK_DEFAULTS",
    "JavaRuntime",
    "SparkOptions",
    "find_java",
    "import_pyspark",
    "parse_java_version",
    "spark_session",
]

# Spark 4 runs on Java 17 and 21. Debian's runtime packages for them, in order of
# preference (Debian 13 and some Ubuntu releases ship only the newer one).
JAVA_MIN_MAJOR = 17
JAVA_PACKAGES = ("openjdk-17-jre-headless", "openjdk-21-jre-headless")
JAVA_HOW_TO_GET = (f"install one (Debian/Ubuntu: sudo apt-get install -y {JAVA_PACKAGES[0]}) "
                   "or set JAVA_HOME to one")

# Settings every scan needs, whatever the cluster; ``SparkOptions.conf`` adds
# or overrides. UTC and TIMESTAMP_NTZ: the exchange log's times are UTC, and
# hours of the day are counted in UTC, as the DuckDB engine does.
SPARK_DEFAULTS: dict[str, str] = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.timestampType": "TIMESTAMP_NTZ",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.ansi.enabled": "true",
}
# Only for a Spark started here (local mode): a driver big enough for local work,
# no web UI, few shuffle partitions (the default 200 makes small scans slow).
LOCAL_DEFAULTS: dict[str, str] = {
    "spark.driver.memory": "4g",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "8",
    "spark.log.level": "ERROR",
}


@dataclass
class SparkOptions:
    """Where Spark runs: ``master`` (e.g. ``local[2]``, ``yarn``, ``spark://host:7077``)
    or ``remote`` (a Spark Connect URL, ``sc://host:15002``), plus extra settings."""

    master: str = "local[2]"
    remote: str | None = None
    conf: dict[str, str] = field(default_factory=dict)


def import_pyspark() -> Any:
    """The ``pyspark.sql`` module, or a clear error saying how to install it.

    The other modules of the ``spark`` extra are checked too, so that a scan
    without them stops here rather than on an import deep in the engine.
    """
    try:
        import pandas  # noqa: F401
        import pyspark.sql
        import sqlglot  # noqa: F401
    except ImportError as exc:
        msg = ("the Spark engine needs the spark extra: pip install 'distillguard[spark]' "
               f"(and Java {JAVA_MIN_MAJOR} or newer) ({exc})")
        raise EngineError(msg) from exc
    return pyspark.sql


@dataclass(frozen=True)
class JavaRuntime:
    """The ``java`` Spark's launcher will run, and its version as ``java -version`` prints it."""

    java: str
    major: int
    version: str


def parse_java_version(output: str) -> tuple[int, str] | None:
    """The major version and the version text in ``java -version``'s output.

    Old runtimes say ``"1.8.0_392"`` (major 8), newer ones ``"17.0.15"``, ``"21"``
    or ``"23-ea"``; the line may follow others (``Picked up JAVA_TOOL_OPTIONS``).
    """
    found = re.search(r'version "((\d+)(?:\.(\d+))?[^"]*)"', output)
    if found is None:
        return None
    major = int(found[2])
    if major == 1 and found[3] is not None:
        major = int(found[3])
    return major, found[1]


def find_java(environ: Mapping[str, str] | None = None) -> JavaRuntime:
    """The Java runtime a local Spark would start, checked to be 17 or newer.

    As Spark's own launcher does, ``$JAVA_HOME/bin/java`` when ``JAVA_HOME`` is
    set, else the first ``java`` on ``PATH``. Anything missing or too old raises
    an ``EngineError`` of one line saying what and how to get it, so that no JVM
    start-up failure reaches the user.
    """
    env = os.environ if environ is None else environ
    need = f"Spark needs Java {JAVA_MIN_MAJOR} or newer"
    home = env.get("JAVA_HOME")
    if home:
        java: str | None = os.path.join(home, "bin", "java")
        if not (os.path.isfile(java) and os.access(java, os.X_OK)):
            msg = f"{need}, but JAVA_HOME={home} has no bin/java: {JAVA_HOW_TO_GET}"
            raise EngineError(msg)
    else:
        java = shutil.which("java", path=env.get("PATH", os.defpath))
        if java is None:
            msg = f"{need} and none was found (no java on PATH, JAVA_HOME not set): {JAVA_HOW_TO_GET}"
            raise EngineError(msg)
    try:
        ran = subprocess.run([java, "-version"], capture_output=True, text=True, errors="replace",
                             env=dict(env), timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        msg = f"{need}, but {java} does not run ({exc}): {JAVA_HOW_TO_GET}"
        raise EngineError(msg) from exc
    output = ran.stderr + ran.stdout
    parsed = parse_java_version(output) if ran.returncode == 0 else None
    if parsed is None:
        said = next((line.strip() for line in output.splitlines() if line.strip()), "nothing")
        msg = (f"{need}, but {java} -version failed or printed no version "
               f"(exit {ran.returncode}: {said}): {JAVA_HOW_TO_GET}")
        raise EngineError(msg)
    major, version = parsed
    if major < JAVA_MIN_MAJOR:
        msg = f"{need}, but {java} is Java {version}: {JAVA_HOW_TO_GET}"
        raise EngineError(msg)
    return JavaRuntime(java, major, version)


def spark_session(options: SparkOptions) -> Any:
    """A ``SparkSession`` for ``options``; its Python workers run this interpreter.

    A Spark started here (not ``remote``: a Spark Connect client needs no JVM)
    first checks for Java, so that a missing runtime is one clear error.
    """
    sql = import_pyspark()
    if not options.remote:
        find_java()
    # Executors started here must run the interpreter that has distillguard installed.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = sql.SparkSession.builder.appName("distillguard-scan")
    if options.remote:
        builder = builder.remote(options.remote)
        conf = {**SPARK_DEFAULTS, **options.conf}
    else:
        # pyspark marks the process as "Spark Connect" once a remote session was made
        # in it, and would then refuse a classic one.
        os.environ.pop("SPARK_CONNECT_MODE_ENABLED", None)
        builder = builder.master(options.master)
        conf = {**SPARK_DEFAULTS, **LOCAL_DEFAULTS, **options.conf}
    for key, value in conf.items():
        builder = builder.config(key, value)
    try:
        return builder.getOrCreate()
    except Exception as exc:  # the JVM failed to start or the server did not answer
        where = options.remote or options.master
        msg = f"cannot start Spark ({where}): {exc}"
        raise EngineError(msg) from exc
