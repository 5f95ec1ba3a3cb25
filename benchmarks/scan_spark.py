"""The same scan on both engines: embedded DuckDB (the baseline) and Spark local[2].

    .venv/bin/python benchmarks/scan_spark.py [--scales 0.033,0.166] [--master local[2]]

Input is the scan benchmark's (benchmarks/scan.py): the simulator's default
scenario, evasion on, held-out pipelines, about 1M and 5M exchanges, cached in
benchmarks/out/. Each engine runs in a fresh process from the Parquet logs to
findings.json. Spark's time is split into start-up (JVM and session), load
(read, validate, de-duplicate), signals (mapInArrow) and aggregation (every
SQL stage and the driver-side graph); its peak memory is the whole process
tree (driver JVM and Python workers), sampled every 0.2 s. The findings of the
two engines are compared account by account.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import measure, mib
from scan import generate

from distillguard.corpora import find_corpora_dir

SCAN = """
import threading, time
from pathlib import Path
import psutil
from distillguard.engines.scan_job import ScanJob, run_scan_job
from distillguard.engines.spark_session import SparkOptions
peak = [0]
def sample():
    me = psutil.Process()
    while True:
        total = 0
        for p in [me, *me.children(recursive=True)]:
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
        peak[0] = max(peak[0], total)
        time.sleep(0.2)
threading.Thread(target=sample, daemon=True).start()
sim = Path({sim!r})
findings, res = run_scan_job(ScanJob([sim / "exchanges"], None, sim / "findings-{engine}.json",
                                     engine={engine!r}, spark=SparkOptions({master!r})))
result = {{"exchanges": findings["input"]["exchanges"], "timings": res.timings,
           "verdicts": {{a["account_id"]: [a["verdict"], a["score"]] for a in findings["accounts"]}},
           "tree_peak": peak[0]}}
"""

AGGREGATION = ("behavior", "templates", "linkage", "verdict")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="0.033,0.166")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--corpora", default=None)
    args = parser.parse_args()
    corpora = find_corpora_dir(args.corpora)
    print(f"scan on both engines (Spark {args.master}; each run in a fresh process)")
    for scale in (float(s) for s in args.scales.split(",")):
        sim = generate(scale, corpora)
        duck = measure(SCAN.format(sim=str(sim), engine="duckdb", master=args.master))
        spark = measure(SCAN.format(sim=str(sim), engine="spark", master=args.master))
        n = duck["result"]["exchanges"]
        duck_rate, spark_rate = n / duck["seconds"], n / spark["seconds"]
        t = spark["result"]["timings"]
        same = duck["result"]["verdicts"] == spark["result"]["verdicts"]
        print(f"scale {scale:g}: {n:,} exchanges", flush=True)
        print(f"  duckdb: {duck['seconds']:.1f}s = {duck_rate:,.0f}/s, "
              f"peak RSS {mib(duck['result']['tree_peak'])}", flush=True)
        print(f"  spark:  {spark['seconds']:.1f}s = {spark_rate:,.0f}/s, "
              f"peak RSS (JVM + Python) {mib(spark['result']['tree_peak'])}; "
              f"ratio spark/duckdb {spark_rate / duck_rate:.3f}", flush=True)
        print(f"  spark split: start-up {t['start']:.1f}s, load {t['load']:.1f}s, "
              f"signals {t['signals']:.1f}s, aggregation "
              f"{sum(t[k] for k in AGGREGATION):.1f}s "
              f"({', '.join(f'{k} {t[k]:.1f}s' for k in AGGREGATION)})", flush=True)
        print(f"  same verdicts and scores on both engines: {same} "
              f"({len(duck['result']['verdicts']):,} accounts listed)", flush=True)


if __name__ == "__main__":
    main()
