"""The sampled exchanges of a batch with their content signals: what every engine stores.

The DuckDB engine calls ``sampled_signal_rows`` in its worker threads, the Spark
engine inside ``mapInArrow`` on its executors: one function, so both engines
sample the same exchanges and score them the same way.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from distillguard.signals.exchange_signals import exchange_signals
from distillguard.signals.hashing import hash_strings
from distillguard.signals.lexicon import Lexicon
from distillguard.signals.near_duplicates import SketchParams
from distillguard.signals.registry import SIGNAL_SCHEMA
from distillguard.signals.sampling import keep_probability, sample_mask

__all__ = ["SIGNAL_INPUT_COLUMNS", "SIGNAL_ROW_SCHEMA", "sampled_signal_rows"]

# What a batch needs: exchange-log columns, plus ``account_exchanges`` (the
# account's total exchanges, which sets its sampling rate).
SIGNAL_INPUT_COLUMNS = ("request_id", "account_id", "ts", "model", "org_id",
                        "payment_fingerprint", "messages", "system", "tools", "has_image")
# One row of table ``signals``: which exchange (``row_id``, a hash of its
# request_id), whose, when, then every signal. Types every engine stores as is.
SIGNAL_ROW_SCHEMA = pa.schema([
    ("row_id", pa.int64()), ("request_id", pa.string()), ("account_id", pa.string()),
    ("owner", pa.string()), ("ts", pa.timestamp("us")), ("model", pa.string()),
    *[(f.name, pa.string() if pa.types.is_dictionary(f.type) else f.type) for f in SIGNAL_SCHEMA],
])


def sampled_signal_rows(batch: pa.RecordBatch, per_account: int, lexicon: Lexicon,
                        sketch: SketchParams | None = None) -> pa.RecordBatch:
    """Rows of ``SIGNAL_ROW_SCHEMA`` for the exchanges of ``batch`` in the per-account sample."""
    rate = keep_probability(batch.column("account_exchanges").to_numpy(zero_copy_only=False),
                            per_account)
    request_ids = batch.column("request_id")
    if isinstance(request_ids, pa.ChunkedArray):
        request_ids = request_ids.combine_chunks()
    hashes = hash_strings(request_ids)  # once: it picks the sample and names its rows
    mask = sample_mask(hashes, rate)
    if not mask.any():
        return pa.RecordBatch.from_pylist([], schema=SIGNAL_ROW_SCHEMA)
    sampled = batch.filter(pa.array(mask))
    signals = exchange_signals(sampled, lexicon=lexicon, sketch=sketch)
    owner = pc.coalesce(sampled.column("org_id"), sampled.column("payment_fingerprint"),
                        sampled.column("account_id"))
    signal_columns = [c.cast(pa.string()) if pa.types.is_dictionary(c.type) else c
                      for c in signals.columns]
    columns = [pa.array(hashes[mask].view(np.int64)), sampled.column("request_id"),
               sampled.column("account_id"), owner,
               sampled.column("ts").cast(pa.timestamp("us")), sampled.column("model"),
               *signal_columns]
    return pa.RecordBatch.from_arrays(columns, schema=SIGNAL_ROW_SCHEMA)
