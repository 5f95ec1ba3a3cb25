"""Measure findings against ground-truth labels."""

from distillguard.evaluate.actor_listing import actor_listing
from distillguard.evaluate.labels import exchanges_per_account, read_labels
from distillguard.evaluate.metrics import evaluate_findings
from distillguard.evaluate.truncate import first_exchanges

__all__ = ["actor_listing", "evaluate_findings", "exchanges_per_account", "first_exchanges",
           "read_labels"]
