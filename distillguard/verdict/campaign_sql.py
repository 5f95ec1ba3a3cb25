"""Campaign profiles, as SQL an engine runs over ``campaign_members(account_id, campaign_id)``."""

from __future__ import annotations

__all__ = [
    "BASELINE_PIVOTS_SQL",
    "CAMPAIGN_CAPABILITIES_SQL",
    "CAMPAIGN_CREATION_BATCHES_SQL",
    "CAMPAIGN_INDICATORS_SQL",
    "CAMPAIGN_PIVOTS_SQL",
    "CAMPAIGN_SAMPLE_PROMPTS_SQL",
    "CAMPAIGN_SPAN_SQL",
    "CAMPAIGN_TEMPLATE_USES_SQL",
]

CAMPAIGN_SPAN_SQL = """
SELECT m.campaign_id, sum(b.exchanges) AS exchanges, min(b.first_seen) AS first_seen,
       max(b.last_seen) AS last_seen
FROM campaign_members m JOIN account_behavior b USING (account_id)
GROUP BY m.campaign_id
"""

CAMPAIGN_CAPABILITIES_SQL = """
SELECT m.campaign_id, CAST(s.capability AS VARCHAR) AS capability, count(*) AS n
FROM campaign_members m JOIN signals s USING (account_id)
GROUP BY ALL
"""

# Values used by at least two accounts of the campaign, most shared first.
CAMPAIGN_INDICATORS_SQL = """
WITH used AS (
    SELECT DISTINCT m.campaign_id, e.account_id, 'ips' AS kind, e.ip AS value
    FROM campaign_members m JOIN exchanges e USING (account_id) WHERE e.ip IS NOT NULL
    UNION ALL
    SELECT DISTINCT m.campaign_id, e.account_id, 'asns', CAST(e.asn AS VARCHAR)
    FROM campaign_members m JOIN exchanges e USING (account_id) WHERE e.asn IS NOT NULL
    UNION ALL
    SELECT DISTINCT m.campaign_id, e.account_id, 'payment_fingerprints', e.payment_fingerprint
    FROM campaign_members m JOIN exchanges e USING (account_id)
    WHERE e.payment_fingerprint IS NOT NULL
    UNION ALL
    SELECT DISTINCT m.campaign_id, e.account_id, 'client_fingerprints', e.client_fingerprint
    FROM campaign_members m JOIN exchanges e USING (account_id)
    WHERE e.client_fingerprint IS NOT NULL
)
SELECT campaign_id, kind, value, count(DISTINCT account_id) AS accounts
FROM used GROUP BY ALL HAVING count(DISTINCT account_id) >= 2
ORDER BY campaign_id, kind, accounts DESC, value
"""

# Per campaign: its members' sampled uses of each campaign-characteristic unit. One
# row per campaign and unit: listing them per member (and summing in Python) ran
# the 15.6M scan out of memory, first for every account, then for members only.
CAMPAIGN_TEMPLATE_USES_SQL = """
SELECT m.campaign_id, t.unit, count(*) AS uses
FROM template_uses t
JOIN campaign_members m USING (account_id)
SEMI JOIN community_units USING (unit)
GROUP BY ALL
"""

CAMPAIGN_PIVOTS_SQL = """
SELECT m.campaign_id, r.release_model AS model, r.released_at,
       sum(r.window_exchanges) AS window_exchanges, sum(r.window_new_model) AS window_new_model
FROM campaign_members m JOIN account_release r USING (account_id)
GROUP BY ALL
"""

BASELINE_PIVOTS_SQL = """
SELECT r.release_model AS model, sum(r.window_exchanges) AS window_exchanges,
       sum(r.window_new_model) AS window_new_model
FROM account_release r ANTI JOIN campaign_members m USING (account_id)
GROUP BY ALL
"""

# Members created within 10 minutes of another member: accounts opened in batches.
CAMPAIGN_CREATION_BATCHES_SQL = """
WITH created AS (
    SELECT m.campaign_id, b.account_created AS created_at
    FROM campaign_members m JOIN account_behavior b USING (account_id)
    WHERE b.account_created IS NOT NULL
),
gaps AS (
    SELECT campaign_id,
           least(coalesce(created_at - lag(created_at) OVER (PARTITION BY campaign_id
                                                             ORDER BY created_at),
                          INTERVAL 1 DAY),
                 coalesce(lead(created_at) OVER (PARTITION BY campaign_id ORDER BY created_at)
                          - created_at, INTERVAL 1 DAY)) AS nearest
    FROM created
)
SELECT campaign_id, count(*) AS with_created,
       count(*) FILTER (WHERE nearest <= INTERVAL 10 MINUTE) AS in_batches
FROM gaps GROUP BY campaign_id
"""

# A few requests per campaign that carry its characteristic templates, for the
# report: of each member's sampled requests carrying them, the first by request_id
# (the only one ``profiles.pick_sample_prompts`` can take), one row per member.
CAMPAIGN_SAMPLE_PROMPTS_SQL = """
WITH firsts AS (
    SELECT s.account_id, min(s.request_id) AS request_id
    FROM signals s
    SEMI JOIN (SELECT row_id FROM template_uses SEMI JOIN community_units USING (unit)) t
         USING (row_id)
    SEMI JOIN campaign_members USING (account_id)
    GROUP BY s.account_id
)
SELECT f.account_id, f.request_id, s.ts
FROM firsts f JOIN signals s ON s.account_id = f.account_id AND s.request_id = f.request_id
ORDER BY f.request_id
"""
