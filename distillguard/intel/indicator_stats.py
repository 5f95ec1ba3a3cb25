"""Per-indicator sightings: what a campaign's own accounts sent with each shared value.

With the traffic at hand (``intel export --db``), each indicator of IPs,
ASNs, client and payment fingerprints gets a ``sighting`` with the exchanges
and accounts of the campaign that carried it and when it was first and last
seen. (Template units are measured on the scan's sample, not on every
exchange, so they keep the campaign's sighting only.)
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from distillguard.engines.sql_engine import SqlEngine
from distillguard.intel.export import IndicatorStats, campaign_values
from distillguard.intel.match_sql import EXCHANGE_COLUMNS, indicator_stats_sql
from distillguard.verdict.findings import iso

__all__ = ["indicator_stats"]


def indicator_stats(engine: SqlEngine, findings: dict[str, Any],
                    ) -> dict[tuple[str, str, str], IndicatorStats]:
    """Keyed by (campaign id, kind, raw value), as ``findings_to_bundle(stats=...)`` reads."""
    members = [(str(a), str(c["campaign_id"])) for c in findings.get("campaigns", [])
               for a in c.get("accounts", [])]
    values = [(str(c["campaign_id"]), kind, raw) for c in findings.get("campaigns", [])
              for kind, raw in campaign_values(c) if kind in EXCHANGE_COLUMNS]
    if not members or not values:
        return {}
    engine.register("intel_members", pa.table({
        "account_id": pa.array([a for a, _ in members], pa.string()),
        "campaign_id": pa.array([c for _, c in members], pa.string())}))
    engine.register("intel_values", pa.table({
        "campaign_id": pa.array([c for c, _, _ in values], pa.string()),
        "kind": pa.array([k for _, k, _ in values], pa.string()),
        "value": pa.array([v for _, _, v in values], pa.string())}))
    return {(cid, kind, value): IndicatorStats(int(n), int(accounts), iso(first), iso(last))
            for cid, kind, value, n, accounts, first, last in engine.rows(indicator_stats_sql())}
