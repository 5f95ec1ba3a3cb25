"""``--spark-remote``: the scan through a real Spark Connect server gives the embedded engine's findings.

The test starts the Connect server that ships with pyspark (``sbin/start-connect-server.sh``,
``local[2]`` behind it) on a free port, and stops it after.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from distillguard.engines.scan_job import ScanJob, run_scan_job
from distillguard.engines.spark_session import SparkOptions
from distillguard.sim import SimOptions, simulate

pytestmark = pytest.mark.usefixtures("java_runtime")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def connect_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    import pyspark

    home = Path(pyspark.__file__).resolve().parent
    work = tmp_path_factory.mktemp("connect-server")
    port = _free_port()
    env = {**os.environ, "SPARK_HOME": str(home), "SPARK_PID_DIR": str(work),
           "SPARK_LOG_DIR": str(work), "SPARK_IDENT_STRING": f"distillguard-{port}",
           "PYSPARK_PYTHON": sys.executable}
    subprocess.run(["bash", str(home / "sbin" / "start-connect-server.sh"),
                    "--master", "local[2]", "--conf", f"spark.connect.grpc.binding.port={port}",
                    "--conf", "spark.driver.memory=2g", "--conf", "spark.ui.enabled=false",
                    "--conf", "spark.sql.shuffle.partitions=8"],
                   env=env, check=True, capture_output=True)
    try:
        deadline = time.monotonic() + 180
        while not _listening(port):
            if time.monotonic() > deadline:
                logs = "\n".join(p.read_text(errors="replace")[-3000:] for p in work.glob("*.out"))
                pytest.fail(f"Spark Connect server did not start:\n{logs}")
            time.sleep(0.5)
        yield f"sc://127.0.0.1:{port}"
    finally:
        subprocess.run(["bash", str(home / "sbin" / "stop-connect-server.sh")], env=env,
                       check=False, capture_output=True)


@pytest.mark.slow
def test_scan_through_spark_connect_matches_the_embedded_engine(connect_url: str, tmp_path: Path,
                                                                 shared_corpora: Path) -> None:
    simulate(SimOptions(out=tmp_path, scale=0.001, seed=43, corpora=shared_corpora),
             show_progress=False)
    logs = [tmp_path / "exchanges"]
    duck, _ = run_scan_job(ScanJob(logs, None, tmp_path / "duckdb.json"))
    remote, result = run_scan_job(ScanJob(logs, None, tmp_path / "connect.json", engine="spark",
                                          spark=SparkOptions(remote=connect_url)))
    assert duck["accounts"], "the scenario must hold a campaign for the comparison to mean much"
    for findings in (duck, remote):
        findings.pop("generated_at")
    assert remote == duck
    assert result.timings["load"] > 0
