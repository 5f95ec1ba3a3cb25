"""Technique scores per exchange: what kind of output a request is harvesting.

``technique_scores`` returns, per technique of the lexicon, 1.0 where a strong
pattern matches, 0.5 where only a weak one does, 0.0 otherwise. ``tool_use`` is
also 1.0 wherever the request carried tool definitions.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from distillguard.signals.lexicon import Lexicon
from distillguard.signals.regex import regex_matches

__all__ = ["technique_scores"]


def technique_scores(batch: pa.RecordBatch | pa.Table, text: pa.Array, *,
                     lexicon: Lexicon) -> dict[str, np.ndarray]:
    """Score each exchange of ``batch`` for each technique; ``text`` from ``request_text``."""
    scores: dict[str, np.ndarray] = {}
    for technique in lexicon.techniques:
        strong = regex_matches(text, technique.strong)
        score = np.where(strong, 1.0, 0.0).astype(np.float32)
        if technique.weak and not strong.all():
            # the weak pattern is read only where the strong one did not match
            rest = np.flatnonzero(~strong)
            score[rest[regex_matches(text.take(pa.array(rest)), technique.weak)]] = 0.5
        if technique.name == "tool_use":
            tools = batch.column("tools")
            has_tools = pc.fill_null(pc.greater(pc.list_value_length(tools), 0), False)
            score = np.where(np.asarray(has_tools.to_numpy(zero_copy_only=False)), 1.0,
                             score).astype(np.float32)
        scores[technique.name] = score
    return scores
