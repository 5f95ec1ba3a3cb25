"""Simulated provider traffic with known ground truth, made from real corpora."""

from distillguard.sim.corpora import find_corpora_dir, iter_corpus, load_corpus
from distillguard.sim.sample_log import sample_exchanges, write_sample_log

__all__ = [
    "find_corpora_dir",
    "iter_corpus",
    "load_corpus",
    "sample_exchanges",
    "write_sample_log",
]
