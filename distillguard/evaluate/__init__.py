"""Measure findings against ground-truth labels."""

from distillguard.evaluate.labels import exchanges_per_account, read_labels
from distillguard.evaluate.metrics import (
    campaign_purity,
    evaluate_findings,
    largest_campaign_shares,
)

__all__ = ["campaign_purity", "evaluate_findings", "exchanges_per_account",
           "largest_campaign_shares", "read_labels"]
