"""Two providers share an operator: does provider A's intel help provider B, and how early?

    .venv/bin/python benchmarks/intel_sharing.py [--scale 0.005] [--scenario evasive]
        [--operator agentic] [--cuts 1000,2000,...] [--corpora DIR]

Simulates providers A (seed 21) and B (seed 22) whose ``--operator`` campaign
is one operator (operator seed 7: same pipelines, part of the same
infrastructure; everything else differs). A scans its traffic and exports a
STIX bundle; B scans the first N of its exchanges (by time) for increasing N,
without and with A's bundle. Printed per cut: the operator's accounts that B
lists (extraction, and extraction or review), legitimate accounts listed,
and whether the operator's campaign is found (one campaign holds at least 3
of its accounts; the scan merges operators that run the same public pipelines).
The baseline is B's scan without intel at the same cut.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from distillguard.corpora import find_corpora_dir
from distillguard.engines.scan_job import ScanJob, run_scan_job
from distillguard.evaluate import actor_listing, first_exchanges, read_labels
from distillguard.intel import IndicatorMatcher, IntelConfig, findings_to_bundle, parse_bundle
from distillguard.sim import SimOptions, simulate

OUT = Path(__file__).resolve().parent / "out"
DEFAULT_CUTS = "1000,2000,3000,5000,7500,10000,15000,20000,30000,50000,80000,0"
KEY = b"benchmark-sharing-key-0123456789"


def provider(name: str, seed: int, args: argparse.Namespace, corpora: Path) -> Path:
    out = OUT / f"intel-{args.scenario}-{args.scale:g}-{args.operator}-{name}"
    if not (out / "labels.jsonl").exists():
        report = simulate(SimOptions(out=out, scenario=args.scenario, scale=args.scale, seed=seed,
                                     corpora=corpora, shared_operator=args.operator,
                                     operator_seed=7), show_progress=False)
        print(f"  provider {name}: {report.exchanges:,} exchanges, {report.accounts:,} accounts",
              flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=0.005)
    parser.add_argument("--scenario", default="evasive")
    parser.add_argument("--operator", default="agentic")
    parser.add_argument("--cuts", default=DEFAULT_CUTS)
    parser.add_argument("--corpora", type=Path, default=None)
    args = parser.parse_args()
    corpora = find_corpora_dir(args.corpora)
    a, b = provider("a", 21, args, corpora), provider("b", 22, args, corpora)
    config = IntelConfig(producer="Provider A", secret=KEY)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        findings_a, _ = run_scan_job(ScanJob([a / "exchanges"], None, folder / "a.json"))
        bundle = findings_to_bundle(findings_a, config).serialize().encode()
        received = parse_bundle(bundle, source="provider A")
        print(f"A: {len(findings_a['campaigns'])} campaign(s); bundle of "
              f"{sum(received.objects.values())} objects, {len(received.indicators)} indicators "
              f"({dict(received.by_kind())})", flush=True)
        labels, _ = read_labels(b / "labels.jsonl")
        total = sum(1 for v in labels.values() if v == args.operator)
        print(f"B: {total} accounts of the shared operator ({args.operator})")
        print(f"{'exchanges':>10} | {'without intel':^34} | {'with A intel':^34} | seconds")
        print(f"{'':>10} | found  extr/listed  legit extr/listed | found  extr/listed  legit "
              "extr/listed |")
        first: dict[str, int | None] = {"without": None, "with": None}
        for n in [int(c) for c in args.cuts.split(",")]:
            log = folder / f"first-{n}.parquet"
            rows = first_exchanges(b / "exchanges", n, log)
            started = time.perf_counter()
            results = {}
            for mode, matcher in (("without", None),
                                  ("with", IndicatorMatcher(received, config.hasher()))):
                findings, _ = run_scan_job(ScanJob([log], None, folder / f"b-{mode}.json",
                                                   releases=b / "releases.json", intel=matcher))
                results[mode] = actor_listing(findings, labels, args.operator)
                if results[mode]["found"] and first[mode] is None:
                    first[mode] = rows
            cells = [f"{'yes' if r['found'] else 'no':>5}  {r['extraction']:>4}/{r['listed']:<6}"
                     f"{r['legit_extraction']:>6}/{r['legit_listed']:<5}"
                     for r in (results["without"], results["with"])]
            print(f"{rows:>10,} | {cells[0]:^34} | {cells[1]:^34} | "
                  f"{time.perf_counter() - started:.0f}", flush=True)
        print(f"first cut where the operator's campaign is found: without intel "
              f"{first['without'] or 'never'}, with A's intel {first['with'] or 'never'} "
              "exchanges in")


if __name__ == "__main__":
    main()
