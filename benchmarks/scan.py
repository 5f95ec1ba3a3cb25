"""End-to-end scan throughput and peak memory at about 1M and 5M exchanges.

    .venv/bin/python benchmarks/scan.py [--scales 0.033,0.166] [--corpora DIR]

Input is the simulator's default scenario (evasion on, held-out pipelines) at
scales giving about 1M and 5M exchanges, cached in benchmarks/out/. Each scan
runs in a fresh process from the Parquet logs to findings.json (ingest into a
temporary store included). The baseline, in the same run, is DuckDB's own
cheapest pass over the same files: one group-by per account (count, distinct
hours, first and last time), reading only the columns it needs. The ratio says
how many times slower than that floor the whole detector is.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import measure, mib

from distillguard.corpora import find_corpora_dir
from distillguard.sim import SimOptions, parse_evasion, simulate

OUT = Path(__file__).resolve().parent / "out"


def generate(scale: float, corpora: Path) -> Path:
    out = OUT / f"scan-{scale:g}"
    if not (out / "labels.jsonl").exists():
        report = simulate(SimOptions(out=out, scale=scale, seed=5, split="test",
                                     evasion=parse_evasion("all"), corpora=corpora),
                          show_progress=False)
        print(f"  simulated {report.exchanges:,} exchanges, {report.accounts:,} accounts "
              f"in {report.seconds:.0f}s", flush=True)
    return out


def run_scan(sim: Path) -> dict:
    return measure(f"""
        from pathlib import Path
        from distillguard.engines.scan_job import ScanJob, run_scan_job
        sim = Path({str(sim)!r})
        findings, res = run_scan_job(ScanJob([sim / "exchanges"], None, sim / "findings.json"))
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="0.033,0.166")
    parser.add_argument("--corpora", default=None)
    args = parser.parse_args()
    corpora = find_corpora_dir(args.corpora)
    print("scan benchmark (each figure from a fresh process)")
    for scale in (float(s) for s in args.scales.split(",")):
        sim = generate(scale, corpora)
        ours = run_scan(sim)
        base = run_baseline(sim)
        n = ours["result"]["exchanges"]
        rate, base_rate = n / ours["seconds"], n / base["seconds"]
        stages = ", ".join(f"{k} {v:.1f}s" for k, v in ours["result"]["timings"].items())
        print(f"scale {scale:g}: {n:,} exchanges in {ours['seconds']:.1f}s = {rate:,.0f}/s, "
              f"peak RSS {mib(ours['peak_rss_bytes'])}; baseline group-by {base_rate:,.0f}/s "
              f"(ratio {rate / base_rate:.3f}); {ours['result']['flagged']:,} accounts listed",
              flush=True)
        print(f"  stages after ingest: {stages}", flush=True)


if __name__ == "__main__":
    main()
