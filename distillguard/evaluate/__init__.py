"""Measure findings against ground-truth labels."""

from distillguard.evaluate.labels import exchanges_per_account, read_labels
from distillguard.evaluate.metrics import evaluate_findings

__all__ = ["evaluate_findings", "exchanges_per_account", "read_labels"]
