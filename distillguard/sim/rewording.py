"""Re-word a pipeline's template by recombining its own corpus items (the ``templates`` knob).

A pipeline's *skeleton* is the set of lines many of its items share (the
instructions around the fill-in). A *style* drops a random part of the skeleton
and handles the system prompt its own way (kept, swapped for another system
prompt of the same corpus, merged into the user turn, or dropped). Each style
rewrites its own disjoint share of the items, so accounts with different styles
neither share a template nor the same requests. Nothing is added: every line
left is a line of the corpus.
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np

__all__ = ["reword", "skeleton_lines"]

DROP_SHARE = 0.35
MIN_LINE_CHARS = 12
_BLANK_RUNS = re.compile(r"\n{3,}")

Item = tuple[str, str | None]


def skeleton_lines(prompts: list[str], *, min_share: float = 0.05, min_count: int = 3) -> set[str]:
    """Lines that recur across many prompts (at least ``min_share`` of them and at least
    ``min_count``): the template, not the fill-in."""
    df: Counter[str] = Counter()
    for p in prompts:
        df.update({line for line in p.split("\n") if len(line.strip()) >= MIN_LINE_CHARS})
    floor = max(min_count, int(min_share * len(prompts)))
    return {line for line, n in df.items() if n >= floor}


def _apply(item: Item, drop: set[str], mode: str, swap_to: str | None) -> Item:
    prompt, system = item
    kept = "\n".join(line for line in prompt.split("\n") if line not in drop)
    text = (_BLANK_RUNS.sub("\n\n", kept) if "\n\n\n" in kept else kept).strip() or prompt
    if system is None or mode == "keep":
        return text, system
    if mode == "swap":
        return text, swap_to or system
    if mode == "merge":
        return f"{system}\n\n{text}", None
    return text, None


def reword(items: list[Item], styles: int, rng: np.random.Generator, *,
           skeleton: tuple[str, ...] | None = None) -> list[list[tuple[Item, int]]]:
    """Split ``items`` among ``styles`` and re-word each share; returns (variant, item index).
    ``skeleton``: the items' ``skeleton_lines``, sorted, when already known."""
    if not items:
        return [[] for _ in range(styles)]
    if skeleton is None:
        skeleton = tuple(sorted(skeleton_lines([p for p, _ in items])))
    systems = sorted({s for _, s in items if s})
    order = rng.permutation(len(items))
    out: list[list[tuple[Item, int]]] = []
    for style in range(styles):
        drop = {line for line in skeleton if rng.random() < DROP_SHARE}
        mode = str(rng.choice(["keep", "swap", "merge", "drop"]))
        swap_to = systems[int(rng.integers(len(systems)))] if systems else None
        share = order[style::styles] if style < len(order) else order[[style % len(order)]]
        out.append([(_apply(items[i], drop, mode, swap_to), int(i)) for i in share])
    return out
