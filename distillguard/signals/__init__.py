"""Per-exchange content signals: pure functions over Arrow batches."""

from distillguard.signals.exchange_signals import exchange_signals
from distillguard.signals.hashing import hash_strings
from distillguard.signals.lexicon import TECHNIQUES, Lexicon, load_lexicon
from distillguard.signals.registry import SIGNAL_SCHEMA, SIGNALS
from distillguard.signals.sampled_rows import SIGNAL_ROW_SCHEMA, sampled_signal_rows
from distillguard.signals.sampling import keep_probability, sample_mask

__all__ = [
    "SIGNALS",
    "SIGNAL_ROW_SCHEMA",
    "SIGNAL_SCHEMA",
    "TECHNIQUES",
    "Lexicon",
    "exchange_signals",
    "hash_strings",
    "keep_probability",
    "load_lexicon",
    "sample_mask",
    "sampled_signal_rows",
]
