"""Which text units are templates shared across owners, as SQL an engine runs.

Reads ``signals`` (sampled exchanges: account_id, owner, text_hash, units).
A unit is a *shared template unit* when it appears in the requests of at
least ``min_owners`` different owners (an owner is an organization, else a
payment method, else the account: one company's many accounts count once)
with at least ``min_texts`` different requests around it (its fill-ins vary,
as a generator's do) or resent at least ``min_repeats_per_owner`` times per
owner (many samples of one prompt: best-of-n harvesting), mostly in requests
that open a conversation (``min_fresh_share``: a pipeline sends each
templated request on its own, while a chat client's system prompt rides on
every turn of conversations that go on).
"""

from __future__ import annotations

__all__ = ["ACCOUNT_CAMPAIGN_TEMPLATE_SQL", "ACCOUNT_TEMPLATE_SQL", "ACCOUNT_UNITS_SQL",
           "COMMUNITY_UNITS_SQL", "TEMPLATE_USES_SQL", "UNIT_COLUMNS_SQL", "UNIT_STATS_SQL",
           "UNIT_USES_SQL"]

# Queries whose distinct counts per unit outgrow the engine's memory on a large
# store run in parts: ``unit % $parts IN ($part, -$part)`` keeps one part of the units
# (``$parts`` 1 and ``$part`` 0: all of them), and the parts' results are unioned
# (``engines.scan``). The distinct counts' hash tables hold a row per unit and owner
# or text; DuckDB runs out of memory on them rather than spill them all
# (measured: 41M unit uses need more than 150 MB, 15.6M exchanges more than 1 GB).
# Owners are counted by a 64-bit hash of their name (``owner_key``; two owners of a
# unit share one with a chance of 1 in 2^64): with numbers rather than strings in
# those hash tables, and no distinct count of accounts (nothing read it), this query
# took 31 s instead of 82 s on a scale-0.1 store.
UNIT_STATS_SQL = """
WITH uses AS (
    SELECT hash(owner) AS owner_key, text_hash, prior_turns,
           unnest(units) AS unit
    FROM signals
)
SELECT unit,
       count(DISTINCT owner_key) AS owners,
       count(DISTINCT text_hash) AS texts,
       count(*) AS uses,
       avg(CASE WHEN prior_turns = 0 THEN 1 ELSE 0 END) AS fresh_share
FROM uses
WHERE unit % $parts IN ($part, -$part)
GROUP BY unit
HAVING count(DISTINCT owner_key) >= $min_owners
   AND (count(DISTINCT text_hash) >= $min_texts
        OR count(*) >= $min_repeats_per_owner * count(DISTINCT owner_key))
   AND avg(CASE WHEN prior_turns = 0 THEN 1 ELSE 0 END) >= $min_fresh_share
"""

# How many unit uses the sampled requests carry, at most (``UNIT_STATS_SQL``'s parts
# follow from it).
UNIT_USES_SQL = "SELECT coalesce(sum(array_length(units)), 0) FROM signals"

# Every sampled request's use of a shared template unit (once per request), built
# once after ``unit_stats``: the template queries below, and the campaign profiles,
# read these few rows instead of unnesting every sampled request's units again.
TEMPLATE_USES_SQL = """
SELECT row_id, account_id, owner_key, unit
FROM (SELECT row_id, account_id, hash(owner) AS owner_key,
             unnest(units) AS unit
      FROM signals)
SEMI JOIN unit_stats USING (unit)
"""

# Per account: the share of its sampled requests built on a shared template.
ACCOUNT_TEMPLATE_SQL = """
WITH hits AS (
    SELECT DISTINCT row_id FROM template_uses
)
SELECT s.account_id,
       avg(CASE WHEN h.row_id IS NULL THEN 0 ELSE 1 END) AS template_share,
       count(h.row_id) AS template_requests
FROM signals s LEFT JOIN hits h USING (row_id)
GROUP BY s.account_id
"""

# Each shared unit's column in the account graph's account-unit matrix (in the
# order of the units' hashes).
UNIT_COLUMNS_SQL = """
SELECT unit, CAST(row_number() OVER (ORDER BY unit) - 1 AS INTEGER) AS col FROM unit_stats
"""

# Per candidate account (table graph_candidates: account_id and its node number) and
# shared unit (by its column, table unit_columns): how many of its sampled requests
# use the unit. Three 32-bit numbers a row: at 15.6M exchanges there are tens of
# millions of these rows, and the graph reads them where they are. Units that a
# crowd of other owners (at least $min_owners outside the candidates) also sends,
# such as benchmark questions with a step-by-step suffix, link nobody: they are
# what ordinary users ask too.
ACCOUNT_UNITS_SQL = """
WITH crowd AS (
    SELECT u.unit FROM template_uses u
    ANTI JOIN graph_candidates USING (account_id)
    WHERE u.unit % $parts IN ($part, -$part)
    GROUP BY u.unit HAVING count(DISTINCT u.owner_key) >= $min_owners
)
SELECT c.node, k.col, CAST(count(*) AS INTEGER) AS n
FROM template_uses u
JOIN graph_candidates c USING (account_id)
JOIN unit_columns k USING (unit)
ANTI JOIN crowd USING (unit)
WHERE u.unit % $parts IN ($part, -$part)
GROUP BY c.node, k.col
"""

# The shared units characteristic of campaigns (table account_community:
# account_id, community, for the accounts of communities that look like
# campaigns): at least $min_inside_share of the unit's sampled uses come from
# those accounts, and fewer than $min_owners owners outside them use it (it is
# no shared template outside campaigns). A popular prompt, or a popular
# client's system prompt, that ordinary users also send is not a campaign's
# template, even when a campaign forwards much of it.
COMMUNITY_UNITS_SQL = """
SELECT u.unit
FROM template_uses u
LEFT JOIN account_community ac USING (account_id)
WHERE u.unit % $parts IN ($part, -$part)
GROUP BY u.unit
HAVING count(ac.community) >= $min_inside_share * count(*)
   AND count(DISTINCT u.owner_key) FILTER (WHERE ac.community IS NULL) < $min_owners
"""

# Per campaign account: how many of its sampled requests carry a unit
# characteristic of campaigns.
ACCOUNT_CAMPAIGN_TEMPLATE_SQL = """
SELECT u.account_id, count(DISTINCT u.row_id) AS requests
FROM template_uses u
SEMI JOIN account_community USING (account_id)
SEMI JOIN community_units USING (unit)
GROUP BY u.account_id
"""
