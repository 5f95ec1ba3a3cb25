"""Shared helpers for benchmarks: run a measured step in a fresh process."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

MEASURE = textwrap.dedent("""
    import json, sys, time
    t0 = time.perf_counter()
    exec(sys.argv[1])
    elapsed = time.perf_counter() - t0
    # VmHWM is this process's own peak; ru_maxrss would carry the parent's over exec.
    with open("/proc/self/status") as status:
        peak = next(int(l.split()[1]) * 1024 for l in status if l.startswith("VmHWM:"))
    print(json.dumps({"seconds": elapsed, "peak_rss_bytes": peak, "result": globals().get("result")}))
""")


def measure(code: str) -> dict[str, Any]:
    """Run ``code`` in a new interpreter; return its wall time, peak RSS and ``result``."""
    proc = subprocess.run([sys.executable, "-c", MEASURE, textwrap.dedent(code)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"benchmark step failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def mib(n: float) -> str:
    return f"{n / 2**20:,.0f} MiB"
