"""A small exchange log made from the corpora, for a first look at ingest.

Legitimate users chat (hh-rlhf, ShareGPT, Dolly); a few accounts send
distillation-pipeline prompts (Orca, UltraFeedback, AlpacaEval judge). Three
damaged lines are appended on purpose, so the ingest summary shows quarantine
at work. The full traffic simulator lives in ``sim.simulator``.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from distillguard.sim.corpora import load_corpus

__all__ = ["sample_exchanges", "write_sample_log"]

_LEGIT = ("hh_rlhf", "sharegpt", "dolly")
_DISTILL = ("orca_style", "ultrafeedback", "alpaca_eval_judge")
_DAMAGED = (
    b'{"request_id": "truncated", "ts": "2026-03-01T00:00:00Z", "account_id": "a", "mod\n',
    b"\xff\xfe binary garbage \x00\x01\n",
    b'{"request_id": "no-account", "ts": 1772323200000, "model": "model-b1", '
    b'"messages": [{"role": "user", "content": "hi"}]}\n',
)


def sample_exchanges(corpora_dir: Path, *, n: int = 2000, seed: int = 1) -> Iterator[dict[str, Any]]:
    """Yield ``n`` exchange records in the exchange-log format."""
    rng = random.Random(seed)
    legit = [item for name in _LEGIT for item in load_corpus(corpora_dir, name)]
    distill = [item for name in _DISTILL for item in load_corpus(corpora_dir, name)]
    start = datetime(2026, 3, 1, tzinfo=UTC)
    for i in range(n):
        is_attack = rng.random() < 0.3
        item = rng.choice(distill if is_attack else legit)
        account = f"acct-{rng.randrange(5) if is_attack else 5 + rng.randrange(200)}"
        ts = start + timedelta(seconds=rng.randrange(3 * 86400))
        record: dict[str, Any] = {
            "request_id": f"sample-{seed}-{i}",
            "ts": ts.isoformat().replace("+00:00", "Z"),
            "account_id": account,
            "model": rng.choice(("model-b1", "model-b1", "model-b2")),
            "messages": [{"role": "user", "content": item["prompt"]}],
        }
        if item.get("system"):
            record["system"] = item["system"]
        if item.get("response"):
            record["response"] = item["response"]
        yield record


def write_sample_log(corpora_dir: Path, out: Path, *, n: int = 2000, seed: int = 1) -> Path:
    """Write the sample log as JSON Lines (plus three damaged lines) and return its path."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "wb") as f:
        for record in sample_exchanges(corpora_dir, n=n, seed=seed):
            f.write(orjson.dumps(record) + b"\n")
        f.writelines(_DAMAGED)
    return out
