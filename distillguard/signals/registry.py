"""Every per-exchange signal, by name: what it is, its Arrow type, its version.

``exchange_signals`` computes them all for a batch; the batch scan, the Spark
engine and the gateway call it, so all three score a request the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from distillguard.signals.lexicon import load_lexicon

__all__ = ["SIGNALS", "SIGNAL_SCHEMA", "SignalSpec"]


@dataclass(frozen=True)
class SignalSpec:
    name: str
    type: pa.DataType
    version: int
    description: str


# One score per technique of the lexicon (1 strong pattern, 0.5 weak, 0 none), in its order.
SIGNALS: tuple[SignalSpec, ...] = (
    *(SignalSpec(t.name, pa.float32(), 1, t.description) for t in load_lexicon().techniques),
    SignalSpec("capability", pa.dictionary(pa.int8(), pa.string()), 1,
               "capability exercised (signals/capabilities.py)"),
    SignalSpec("prior_turns", pa.int32(), 1, "messages before the new turn"),
    SignalSpec("prompt_chars", pa.int32(), 1, "characters in the new turn"),
    SignalSpec("text_hash", pa.int64(), 2, "hash of the whole normalized request"),
    SignalSpec("units", pa.list_(pa.int64()), 2, "distinct hashes of the request's text units"),
)

SIGNAL_SCHEMA = pa.schema([(s.name, s.type) for s in SIGNALS])
