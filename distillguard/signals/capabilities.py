"""Capability taxonomy: which model capability each request exercises.

One label per request: ``vision`` when it carries an image, ``tool_use`` when
it carries tool definitions or a tool-use technique score of 1, else the first
lexicon capability whose pattern matches (agentic coding, coding, math and
reasoning, data analysis, writing, knowledge Q&A), else ``general_chat``.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from distillguard.signals.lexicon import Lexicon, load_lexicon
from distillguard.signals.regex import regex_matches

__all__ = ["CAPABILITIES", "capability_labels"]

# The structural labels, the lexicon's capabilities in its order, then the fallback.
CAPABILITIES = ("vision", "tool_use", *(name for name, _ in load_lexicon().capabilities),
                "general_chat")


def capability_labels(batch: pa.RecordBatch | pa.Table, text: pa.Array, tool_use: np.ndarray, *,
                      lexicon: Lexicon) -> pa.Array:
    """A dictionary-encoded capability label per request; ``text`` from ``request_text``."""
    n = len(text)
    label = np.full(n, CAPABILITIES.index("general_chat"), dtype=np.int8)
    unset = np.ones(n, dtype=bool)
    has_image = batch.column("has_image")
    image = np.asarray(pc.fill_null(has_image, False).to_numpy(zero_copy_only=False), dtype=bool)
    for name, mask in (("vision", image), ("tool_use", tool_use >= 1.0)):
        hit = unset & mask
        label[hit] = CAPABILITIES.index(name)
        unset &= ~hit
    for name, pattern in lexicon.capabilities:
        if not unset.any():
            break
        candidates = np.flatnonzero(unset)
        hit_rows = candidates[regex_matches(text.take(pa.array(candidates)), pattern)]
        label[hit_rows] = CAPABILITIES.index(name)
        unset[hit_rows] = False
    return pa.DictionaryArray.from_arrays(pa.array(label), pa.array(CAPABILITIES))
