"""Simulated provider traffic with known ground truth, made from real corpora."""

from distillguard.corpora import find_corpora_dir, iter_corpus, load_corpus
from distillguard.sim.scenario import (
    DEFAULT_SCENARIO,
    EVASION_KNOBS,
    SPLITS,
    list_scenarios,
    load_scenario,
    parse_evasion,
)
from distillguard.sim.simulator import SimReport, simulate
from distillguard.sim.world import SimOptions
from distillguard.sim.writer import FORMATS

__all__ = [
    "DEFAULT_SCENARIO",
    "EVASION_KNOBS",
    "FORMATS",
    "SPLITS",
    "SimOptions",
    "SimReport",
    "find_corpora_dir",
    "iter_corpus",
    "list_scenarios",
    "load_corpus",
    "load_scenario",
    "parse_evasion",
    "simulate",
]
