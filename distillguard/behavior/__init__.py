"""Per-account behavioral features, as SQL text that an engine runs."""

from distillguard.behavior.account_sql import (
    ACCOUNT_BEHAVIOR_SQL,
    ACCOUNT_CONTENT_SQL,
    ACCOUNT_RELEASE_SQL,
)
from distillguard.behavior.coverage import (
    EXCHANGES_SUMMARY_COLUMNS,
    EXCHANGES_SUMMARY_SQL,
    SIGNAL_NEEDS,
    field_coverage,
)
from distillguard.behavior.releases import releases_table

__all__ = ["ACCOUNT_BEHAVIOR_SQL", "ACCOUNT_CONTENT_SQL", "ACCOUNT_RELEASE_SQL",
           "EXCHANGES_SUMMARY_COLUMNS", "EXCHANGES_SUMMARY_SQL", "SIGNAL_NEEDS", "field_coverage",
           "releases_table"]
