"""End-to-end scan time and peak memory by input size: the memory profile of docs/scale.md.

    .venv/bin/python benchmarks/scan.py [--scale 1] [--scales 0.04,0.16,0.6] [--formats parquet,jsonl.gz]
                                        [--data SIM_DIR ...] [--memory 1GB] [--threads N]

Input is the simulator's default scenario (evasion on, held-out pipelines),
cached in benchmarks/out/scan-<scale>/ (scale 1 is about 26M exchanges, 0.6
about 16M, 0.16 about 4M, 0.04 about 1M); ``--data`` scans simulations
already on disk instead (``distillguard simulate --out DIR``). ``jsonl.gz``
scans the same exchanges written as gzipped JSON Lines (made once from the
Parquet parts). Each scan runs in a fresh process from the logs to
findings.json (ingest into a temporary store included), with the engine's
memory set by ``--memory``; the figures are its wall time, its peak resident
memory (VmHWM) and the time of each stage.

The baseline, in the same run, is DuckDB's own cheapest pass over the same
Parquet files: one group-by per account (count, distinct hours, first and last
time), reading only the columns it needs. The ratio says how many times slower
than that floor the whole detector is. The machine's load average is printed
with each figure: on a shared machine, times say little without it.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import measure, mib

from distillguard.corpora import find_corpora_dir
from distillguard.engines.resources import DEFAULT_MEMORY
from distillguard.sim import SimOptions, parse_evasion, simulate

OUT = Path(__file__).resolve().parent / "out"
FORMATS = ("parquet", "jsonl.gz")


def generate(scale: float, corpora: Path) -> Path:
    out = OUT / f"scan-{scale:g}"
    if not (out / "labels.jsonl").exists():
        report = simulate(SimOptions(out=out, scale=scale, seed=5, split="test",
                                     evasion=parse_evasion("all"), corpora=corpora),
                          show_progress=False)
        print(f"  simulated {report.exchanges:,} exchanges, {report.accounts:,} accounts "
              f"in {report.seconds:.0f}s", flush=True)
    return out


def jsonl_gz_copy(sim: Path) -> Path:
    """The simulation's Parquet parts as gzipped JSON Lines (one file per part), made once."""
    import duckdb

    folder = sim / "exchanges-jsonl-gz"
    folder.mkdir(exist_ok=True)
    con = duckdb.connect(config={"memory_limit": "1GB", "threads": 2})
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")
    times = ", ".join(f"strftime({c}::TIMESTAMP, '%Y-%m-%dT%H:%M:%S.%gZ') AS {c}"
                      for c in ("ts", "account_created"))
    for part in sorted((sim / "exchanges").glob("*.parquet")):
        target = folder / (part.stem + ".jsonl.gz")
        if not target.exists():
            tmp = target.with_name(target.name + ".tmp")
            con.execute(f"COPY (SELECT * REPLACE ({times}) FROM read_parquet('{part}')) "
                        f"TO '{tmp}' (FORMAT json, COMPRESSION gzip)")
            tmp.replace(target)
    return folder


def run_scan(logs: Path, releases: Path, memory: str, threads: int | None) -> dict:
    return measure(f"""
        from pathlib import Path
        from distillguard.engines.resources import EngineResources
        from distillguard.engines.scan_job import ScanJob, run_scan_job
        out = Path({str(logs)!r}).parent / "findings-bench.json"
        job = ScanJob([Path({str(logs)!r})], None, out, releases=Path({str(releases)!r}),
                      resources=EngineResources({memory!r}, {threads!r}))
        findings, res = run_scan_job(job)
        result = {{"exchanges": findings["input"]["exchanges"], "timings": res.timings,
                   "flagged": len(findings["accounts"])}}
    """)


def run_baseline(sim: Path) -> dict:
    return measure(f"""
        import duckdb
        con = duckdb.connect(config={{"memory_limit": "1500MB"}})
        con.execute("SET enable_progress_bar = false")
        rows = con.execute(
            "SELECT account_id, count(*), count(DISTINCT hour(ts)), min(epoch_ms(ts)), max(epoch_ms(ts)) "
            "FROM read_parquet('{sim}/exchanges/*.parquet') GROUP BY account_id").fetchall()
        result = {{"exchanges": con.execute(
            "SELECT count(*) FROM read_parquet('{sim}/exchanges/*.parquet')").fetchone()[0]}}
    """)


def load() -> str:
    return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="0.04,0.16",
                        help="Simulator scales, comma-separated (0.04: ~1M exchanges, 0.16: "
                             "~4M, 0.6: ~16M, 1: ~26M).")
    parser.add_argument("--scale", type=float, default=None,
                        help="One scale instead of --scales (1: the report's 26M exchanges).")
    parser.add_argument("--data", type=Path, action="append", default=[],
                        help="A simulation folder already written (repeatable); replaces "
                             "--scales.")
    parser.add_argument("--formats", default="parquet",
                        help=f"Input formats to scan, comma-separated: {', '.join(FORMATS)}.")
    parser.add_argument("--memory", default=DEFAULT_MEMORY, help="The engine's memory limit.")
    parser.add_argument("--threads", type=int, default=None, help="Engine threads.")
    parser.add_argument("--corpora", default=None)
    args = parser.parse_args()
    formats = [f.strip() for f in args.formats.split(",")]
    if unknown := set(formats) - set(FORMATS):
        parser.error(f"unknown format(s) {', '.join(sorted(unknown))}")
    if args.data:
        sims = args.data
    else:
        corpora = find_corpora_dir(args.corpora)
        scales = [args.scale] if args.scale is not None else [
            float(s) for s in args.scales.split(",")]
        sims = [generate(scale, corpora) for scale in scales]
    print(f"scan benchmark (each figure from a fresh process; engine memory {args.memory}, "
          f"threads {args.threads or os.cpu_count()})", flush=True)
    for sim in sims:
        base = run_baseline(sim)
        for fmt in formats:
            logs = sim / "exchanges" if fmt == "parquet" else jsonl_gz_copy(sim)
            before = load()
            ours = run_scan(logs, sim / "releases.json", args.memory, args.threads)
            n = ours["result"]["exchanges"]
            rate, base_rate = n / ours["seconds"], n / base["seconds"]
            stages = ", ".join(f"{k} {v:.1f}s" for k, v in ours["result"]["timings"].items())
            print(f"{sim.name} {fmt}: {n:,} exchanges in {ours['seconds']:.1f}s = {rate:,.0f}/s, "
                  f"peak RSS {mib(ours['peak_rss_bytes'])}; baseline group-by over Parquet "
                  f"{base_rate:,.0f}/s (ratio {rate / base_rate:.3f}); "
                  f"{ours['result']['flagged']:,} accounts listed", flush=True)
            print(f"  stages after ingest: {stages}", flush=True)
            print(f"  {before} at start, {load()} at end", flush=True)


if __name__ == "__main__":
    main()
