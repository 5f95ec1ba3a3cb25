"""Start (or connect to) Spark for the scale-out engine, with the settings that matter.

``pyspark`` is an optional extra (``pip install 'distillguard[spark]'``); it is
imported only here and in the other ``spark_*`` modules, so the default engine
never needs a JVM.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Any

from distillguard.errors import EngineError

__all__ = ["SPARK_DEFAULTS", "SparkOptions", "import_pyspark", "spark_session"]

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
    """The ``pyspark.sql`` module, or a clear error saying how to install it."""
    try:
        import pyspark.sql
    except ImportError as exc:
        msg = ("the Spark engine needs pyspark: pip install 'distillguard[spark]' "
               f"(and Java 17 or newer) ({exc})")
        raise EngineError(msg) from exc
    return pyspark.sql


def spark_session(options: SparkOptions) -> Any:
    """A ``SparkSession`` for ``options``; its Python workers run this interpreter."""
    sql = import_pyspark()
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
