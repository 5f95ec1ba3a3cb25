"""Read ground-truth labels and per-account exchange counts for evaluation."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import orjson
import pyarrow.compute as pc

from distillguard.errors import InputError
from distillguard.logs import read_exchanges

__all__ = ["exchanges_per_account", "read_labels"]


def read_labels(path: Path) -> tuple[dict[str, str | None], dict[str, str]]:
    """``labels.jsonl`` -> (account -> actor or None, account -> archetype when given)."""
    labels: dict[str, str | None] = {}
    archetypes: dict[str, str] = {}
    try:
        with open(path, "rb") as f:
            for line in f:
                if not line.strip():
                    continue
                row = orjson.loads(line)
                labels[row["account_id"]] = row.get("actor")
                if row.get("archetype"):
                    archetypes[row["account_id"]] = row["archetype"]
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError) as exc:
        msg = f"cannot read labels {path}: {exc}"
        raise InputError(msg) from exc
    return labels, archetypes


def exchanges_per_account(logs: list[Path]) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for chunk in read_exchanges(logs):
        values = pc.value_counts(chunk.batch.column("account_id"))
        counts.update(dict(zip(values.field("values").to_pylist(),
                               values.field("counts").to_pylist(), strict=True)))
    return dict(counts)
