"""SQL that matches partners' indicators against the traffic, and measures our own.

Reads ``exchanges`` and ``signals`` (the sampled exchanges with their
template units) and tables the matcher registers: ``partner_unit_set(unit)``,
``partner_units(unit, campaign)`` and ``partner_values(value)``.
"""

from __future__ import annotations

__all__ = ["EXCHANGE_COLUMNS", "PARTNER_TEMPLATE_REQUESTS_SQL", "PARTNER_UNIT_USES_SQL",
           "distinct_values_sql", "indicator_stats_sql", "value_matches_sql"]

# indicator kind -> exchange-log column it is matched on
EXCHANGE_COLUMNS = {"ip": "ip", "asn": "asn", "client_fingerprint": "client_fingerprint",
                    "payment": "payment_fingerprint"}

# Per account and partner unit: its sampled requests using the unit, its owner and
# sample size (the crowd test reads them).
PARTNER_UNIT_USES_SQL = """
WITH uses AS (
    SELECT account_id, owner, unnest(units) AS unit FROM signals
),
sampled AS (
    SELECT account_id, count(*) AS sampled FROM signals GROUP BY account_id
)
SELECT u.account_id, max(u.owner) AS owner, u.unit, count(*) AS uses,
       max(s.sampled) AS sampled
FROM uses u
SEMI JOIN partner_unit_set USING (unit)
JOIN sampled s ON u.account_id = s.account_id
GROUP BY u.account_id, u.unit
"""

# Per account and partner campaign: sampled requests carrying any of its units.
PARTNER_TEMPLATE_REQUESTS_SQL = """
WITH uses AS (
    SELECT account_id, row_id, unnest(units) AS unit FROM signals
)
SELECT u.account_id, p.campaign, count(DISTINCT u.row_id) AS requests,
       count(DISTINCT u.unit) AS units
FROM uses u JOIN partner_units p ON u.unit = p.unit
GROUP BY u.account_id, p.campaign
"""


def distinct_values_sql(column: str) -> str:
    """Distinct non-null values of one exchange column (``EXCHANGE_COLUMNS``)."""
    return f"SELECT DISTINCT {column} AS value FROM exchanges WHERE {column} IS NOT NULL"


def value_matches_sql(column: str) -> str:
    """Per account: exchanges whose ``column`` is one of ``partner_values``."""
    return f"""
SELECT e.account_id, e.{column} AS value, count(*) AS exchanges
FROM exchanges e JOIN partner_values p ON e.{column} = p.value
GROUP BY e.account_id, e.{column}
"""


def indicator_stats_sql() -> str:
    """Per campaign and shared value, what the campaign's own accounts sent with it.

    Reads ``intel_members(account_id, campaign_id)`` and
    ``intel_values(campaign_id, kind, value)`` (values as text).
    """
    parts = [f"""
SELECT v.campaign_id, v.kind, v.value, count(*) AS exchanges,
       count(DISTINCT e.account_id) AS accounts, min(e.ts) AS first_seen, max(e.ts) AS last_seen
FROM exchanges e
JOIN intel_members m ON e.account_id = m.account_id
JOIN intel_values v ON v.campaign_id = m.campaign_id AND v.kind = '{kind}'
                   AND CAST(e.{column} AS VARCHAR) = v.value
GROUP BY v.campaign_id, v.kind, v.value""" for kind, column in EXCHANGE_COLUMNS.items()]
    return "\nUNION ALL\n".join(parts)
