"""Simulator throughput to Parquet and peak memory, against plain pyarrow writing.

    .venv/bin/python benchmarks/simulate.py [--scale 0.1] [--workers 2] [--evasion all]
                                            [--corpora DIR]

The simulation runs in a fresh process; a sampler adds up the resident memory
of that process and its workers every 0.1 s (RSS counts the content store the
forked workers share once per process, so PSS, which splits shared pages, is
printed too). The baseline, in the same run, is pyarrow writing the same rows
with the same schema and compression and no simulation at all: the largest
part file, read into memory first, written again by as many processes as the
simulator had workers. The ratio is simulated exchanges/s over that.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import psutil
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import mib

OUT = Path(__file__).resolve().parent / "out"

SIMULATE = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from distillguard.sim import SimOptions, parse_evasion, simulate
    scale, workers, out, corpora = float(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    r = simulate(SimOptions(out=Path(out), scale=scale, seed=1, workers=workers,
                            evasion=parse_evasion(sys.argv[5]),
                            corpora=Path(corpora) if corpora else None), show_progress=False)
    print(json.dumps({"exchanges": r.exchanges, "accounts": r.accounts, "seconds": r.seconds,
                      "by_kind": r.by_kind}))
""")

WRITE = textwrap.dedent("""
    import json, sys, time
    import pyarrow.parquet as pq
    table = pq.read_table(sys.argv[1])
    t0 = time.perf_counter()
    pq.write_table(table, sys.argv[2], compression="zstd")
    print(json.dumps({"rows": table.num_rows, "seconds": time.perf_counter() - t0}))
""")


def run_sampled(cmd: list[str]) -> tuple[str, float, int, int]:
    """Run ``cmd``; return (stdout, seconds, peak tree RSS, peak tree PSS)."""
    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as stdout:
        proc = subprocess.Popen(cmd, stdout=stdout, stderr=subprocess.PIPE, text=True)
        root = psutil.Process(proc.pid)
        peak_rss = peak_pss = 0
        while proc.poll() is None:
            rss = pss = 0
            try:
                for p in [root, *root.children(recursive=True)]:
                    info = p.memory_full_info()
                    rss += info.rss
                    pss += getattr(info, "pss", info.rss)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                pass
            peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
            time.sleep(0.1)
        seconds = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"simulation failed:\n{proc.stderr.read() if proc.stderr else ''}")
        stdout.seek(0)
        return stdout.read(), seconds, peak_rss, peak_pss


def baseline(part: Path, copies: int) -> float:
    """Rows/s of plain pyarrow writing the rows of ``part`` in ``copies`` processes at once."""
    with tempfile.TemporaryDirectory() as tmp:
        procs = [subprocess.Popen([sys.executable, "-c", WRITE, str(part), f"{tmp}/{i}.parquet"],
                                  stdout=subprocess.PIPE, text=True) for i in range(copies)]
        results = [json.loads(p.communicate()[0]) for p in procs]
    return sum(r["rows"] for r in results) / max(r["seconds"] for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--evasion", default="none")
    parser.add_argument("--corpora", default="")
    args = parser.parse_args()
    out = OUT / f"sim-{args.scale:g}-{args.evasion.replace(',', '+')}"
    stdout, wall, peak_rss, peak_pss = run_sampled(
        [sys.executable, "-c", SIMULATE, str(args.scale), str(args.workers), str(out),
         args.corpora, args.evasion])
    result = json.loads(stdout.strip().splitlines()[-1])
    parts = sorted((out / "exchanges").glob("*.parquet"), key=lambda p: p.stat().st_size)
    base = baseline(parts[-1], args.workers)
    rate = result["exchanges"] / result["seconds"]
    size = sum(p.stat().st_size for p in parts)
    rows = pq.ParquetFile(parts[-1]).metadata.num_rows
    print(f"simulate --scale {args.scale:g} --workers {args.workers} --evasion {args.evasion}: "
          f"{result['exchanges']:,} "
          f"exchanges, {result['accounts']:,} accounts in {result['seconds']:.1f} s "
          f"({wall:.1f} s with interpreter start)")
    print(f"  {rate:,.0f} exchanges/s to Parquet ({size / result['exchanges']:.0f} B/exchange, "
          f"{mib(size)} on disk)")
    print(f"  baseline: plain pyarrow write of the same rows ({rows:,} per process, "
          f"{args.workers} processes): {base:,.0f} rows/s")
    print(f"  ratio simulator / plain write: {rate / base:.2f}")
    print(f"  peak memory (process tree): RSS {mib(peak_rss)}, PSS {mib(peak_pss)}")
    for row in result["by_kind"]:
        print(f"    {row['kind']:10s} {row['actor'] or '-':10s} {row['accounts']:>8,} accounts "
              f"{row['exchanges']:>12,} exchanges")


if __name__ == "__main__":
    main()
