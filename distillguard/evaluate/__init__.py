"""Measure findings against ground-truth labels."""

from distillguard.evaluate.actor_listing import actor_listing
from distillguard.evaluate.labels import exchanges_per_account, read_labels
from distillguard.evaluate.metrics import (
    campaign_purity,
    evaluate_findings,
    largest_campaign_share,
)
from distillguard.evaluate.truncate import first_exchanges

__all__ = ["actor_listing", "campaign_purity", "evaluate_findings", "exchanges_per_account",
           "first_exchanges", "largest_campaign_share", "read_labels"]
