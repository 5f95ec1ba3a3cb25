"""Per-exchange content signals: pure functions over Arrow batches."""

from distillguard.signals.exchange_signals import exchange_signals
from distillguard.signals.hashing import hash_strings
from distillguard.signals.lexicon import Lexicon, load_lexicon
from distillguard.signals.registry import SIGNAL_SCHEMA, SIGNALS
from distillguard.signals.sampling import sample_mask, sampling_rates

__all__ = [
    "SIGNALS",
    "SIGNAL_SCHEMA",
    "Lexicon",
    "exchange_signals",
    "hash_strings",
    "load_lexicon",
    "sample_mask",
    "sampling_rates",
]
