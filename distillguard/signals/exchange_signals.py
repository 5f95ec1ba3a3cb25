"""All per-exchange signals of a batch at once."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from distillguard.signals.capabilities import capability_labels
from distillguard.signals.lexicon import TECHNIQUES, Lexicon, load_lexicon
from distillguard.signals.near_duplicates import SketchParams
from distillguard.signals.registry import SIGNAL_SCHEMA
from distillguard.signals.techniques import technique_scores
from distillguard.signals.template_units import template_units
from distillguard.signals.text import last_message_text, prior_turns, request_text

__all__ = ["exchange_signals"]


def exchange_signals(batch: pa.RecordBatch | pa.Table, *,
                     lexicon: Lexicon | None = None,
                     sketch: SketchParams | None = None) -> pa.RecordBatch:
    """One row of ``SIGNAL_SCHEMA`` per exchange of ``batch`` (same order, same length).

    ``batch`` needs the exchange-log columns ``messages``, ``system``, ``tools``
    and ``has_image``. ``sketch`` adds near-duplicate tokens to the units
    (``signals.near_duplicates``).
    """
    lexicon = lexicon or load_lexicon()
    last = last_message_text(batch)
    last_chars = pc.utf8_length(last)
    text = request_text(batch, last=last, last_chars=last_chars)
    scores = technique_scores(batch, text, lexicon=lexicon)
    capability = capability_labels(batch, text, scores["tool_use"], lexicon=lexicon)
    units = template_units(batch, last=last, last_chars=last_chars, sketch=sketch)
    prompt_chars = last_chars.cast(pa.int32())
    columns = [pa.array(scores[name], pa.float32()) for name in TECHNIQUES]
    columns += [capability, pa.array(prior_turns(batch), pa.int32()), prompt_chars,
                pa.array(units.text_hash, pa.int64()), units.units]
    return pa.RecordBatch.from_arrays(columns, schema=SIGNAL_SCHEMA)


