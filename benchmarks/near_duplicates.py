"""What near-duplicate tokens cost the signals stage: per-request signals with and without.

    .venv/bin/python benchmarks/near_duplicates.py SIM_DIR [--rows 50000]

Reads the first ``--rows`` exchanges of a simulation's Parquet logs (for
example ``distillguard simulate --evasion paraphrase --scale 0.01``) and
computes every per-request signal (``signals.exchange_signals``) three times
each way, with the packaged policy's near-duplicate parameters and without
them (the baseline, in the same run). Prints requests/s for both and the ratio.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds

from distillguard.signals import exchange_signals, load_lexicon
from distillguard.verdict import load_policy


def _best(batch: pa.Table, sketch: object, repeats: int = 3) -> float:
    lexicon = load_lexicon()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        exchange_signals(batch, lexicon=lexicon, sketch=sketch)
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sim", type=Path)
    parser.add_argument("--rows", type=int, default=50_000)
    args = parser.parse_args()
    dataset = ds.dataset(args.sim / "exchanges", format="parquet")
    batch = dataset.head(args.rows, columns=["messages", "system", "tools", "has_image"])
    sketch = load_policy().sketch
    exchange_signals(batch.slice(0, 100), lexicon=load_lexicon(), sketch=sketch)  # warm up
    plain, with_tokens = _best(batch, None), _best(batch, sketch)
    n = batch.num_rows
    print(f"{n:,} requests: without near-duplicate tokens {n / plain:,.0f}/s, "
          f"with {n / with_tokens:,.0f}/s, ratio {with_tokens / plain:.2f}x the time")


if __name__ == "__main__":
    main()
