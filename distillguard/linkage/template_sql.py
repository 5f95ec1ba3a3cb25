"""Which text units are templates shared across owners, as SQL an engine runs.

Reads ``signals`` (sampled exchanges: account_id, owner, text_hash, units).
A unit is a *shared template unit* when it appears in the requests of at
least ``min_owners`` different owners (an owner is an organization, else a
payment method, else the account: one company's many accounts count once)
with at least ``min_texts`` different requests around it, and at least
``min_texts_per_owner`` different requests per owner (its fill-ins vary, as a
generator's do; a popular prompt that many people paste nearly verbatim, or a
benchmark question, is shared by more owners than it has variants).
"""

from __future__ import annotations

__all__ = ["ACCOUNT_TEMPLATE_SQL", "ACCOUNT_UNITS_SQL", "UNIT_STATS_SQL"]

UNIT_STATS_SQL = """
CREATE OR REPLACE TABLE unit_stats AS
WITH uses AS (
    SELECT account_id, owner, text_hash, unnest(list_distinct(units)) AS unit FROM signals
)
SELECT unit,
       count(DISTINCT owner) AS owners,
       count(DISTINCT account_id) AS accounts,
       count(DISTINCT text_hash) AS texts,
       count(*) AS uses
FROM uses GROUP BY unit
HAVING count(DISTINCT owner) >= $min_owners AND count(DISTINCT text_hash) >= $min_texts
   AND count(DISTINCT text_hash) >= $min_texts_per_owner * count(DISTINCT owner)
"""

# Per account: the share of its sampled requests built on a shared template.
ACCOUNT_TEMPLATE_SQL = """
CREATE OR REPLACE TABLE account_template AS
WITH hits AS (
    SELECT DISTINCT row_id
    FROM (SELECT row_id, unnest(units) AS unit FROM signals)
    SEMI JOIN unit_stats USING (unit)
)
SELECT s.account_id,
       avg(CASE WHEN h.row_id IS NULL THEN 0 ELSE 1 END) AS template_share,
       count(h.row_id) AS template_requests
FROM signals s LEFT JOIN hits h USING (row_id)
GROUP BY s.account_id
"""

# Per account and shared unit: how many of its sampled requests use the unit.
ACCOUNT_UNITS_SQL = """
SELECT account_id, unit, count(*) AS n
FROM (SELECT account_id, unnest(list_distinct(units)) AS unit FROM signals)
SEMI JOIN unit_stats USING (unit)
GROUP BY account_id, unit
"""
