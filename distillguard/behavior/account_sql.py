"""Per-account behavioral features, as SQL text an engine runs.

Tables read: ``exchanges`` (every exchange), ``signals`` (the sampled
exchanges with their content signals, see ``signals.exchange_signals``) and
``releases`` (model, released_at). Written: ``account_behavior`` and
``account_content``. Plain SQL that DuckDB and Spark SQL both accept.
"""

from __future__ import annotations

__all__ = ["ACCOUNT_BEHAVIOR_SQL", "ACCOUNT_CONTENT_SQL", "ACCOUNT_RELEASE_SQL"]

ACCOUNT_BEHAVIOR_SQL = """
CREATE OR REPLACE TABLE account_behavior AS
WITH gaps AS (
    SELECT account_id, ts,
           epoch_ms(ts) - lag(epoch_ms(ts)) OVER (PARTITION BY account_id ORDER BY ts) AS gap_ms
    FROM exchanges
)
SELECT e.account_id,
       count(*) AS exchanges,
       min(e.ts) AS first_seen,
       max(e.ts) AS last_seen,
       count(DISTINCT CAST(e.ts AS DATE)) AS active_days,
       list(DISTINCT hour(e.ts)) AS hours,
       count(DISTINCT e.ip) AS ips,
       count(DISTINCT e.asn) AS asns,
       count(DISTINCT e.client_fingerprint) AS client_fingerprints,
       count(DISTINCT e.user_agent) AS user_agents,
       count(DISTINCT e.payment_fingerprint) AS payment_fingerprints,
       count(DISTINCT e.model) AS models,
       coalesce(sum(e.input_tokens), 0) AS input_tokens,
       coalesce(sum(e.output_tokens), 0) AS output_tokens,
       count(DISTINCT e.conversation_id) AS conversations,
       any_value(e.org_id) AS org_id,
       any_value(e.account_tier) AS account_tier,
       bool_or(coalesce(e.verified, false)) AS verified,
       min(e.account_created) AS account_created,
       any_value(e.payment_fingerprint) AS payment_fingerprint,
       mode(e.ip) AS main_ip,
       mode(e.client_fingerprint) AS main_client_fingerprint,
       mode(e.asn) AS main_asn,
       g.gap_cv
FROM exchanges e
JOIN (SELECT account_id, stddev_pop(gap_ms) / nullif(avg(gap_ms), 0) AS gap_cv
      FROM gaps GROUP BY account_id) g USING (account_id)
GROUP BY e.account_id, g.gap_cv
"""

# Per account and release: its traffic in the 24 h after the release, and how
# much of it went to the new model.
ACCOUNT_RELEASE_SQL = """
CREATE OR REPLACE TABLE account_release AS
SELECT e.account_id, r.model AS release_model, r.released_at,
       count(*) AS window_exchanges,
       count(*) FILTER (WHERE e.model = r.model) AS window_new_model
FROM exchanges e
JOIN releases r ON e.ts >= r.released_at AND e.ts < r.released_at + INTERVAL 24 HOUR
GROUP BY e.account_id, r.model, r.released_at
"""

ACCOUNT_CONTENT_SQL = """
CREATE OR REPLACE TABLE account_content AS
SELECT account_id,
       count(*) AS sampled,
       avg(CASE WHEN cot_elicitation >= 1 THEN 1 ELSE 0 END) AS cot_elicitation,
       avg(CASE WHEN grading >= 1 THEN 1 ELSE 0 END) AS grading,
       avg(CASE WHEN data_generation >= 1 THEN 1 ELSE 0 END) AS data_generation,
       avg(CASE WHEN safe_rewrite >= 1 THEN 1 ELSE 0 END) AS safe_rewrite,
       avg(CASE WHEN tool_use >= 1 THEN 1 ELSE 0 END) AS tool_use,
       avg(CASE WHEN greatest(cot_elicitation, grading, data_generation, safe_rewrite,
                              tool_use) >= 1 THEN 1 ELSE 0 END) AS any_technique,
       avg(CASE WHEN prior_turns > 0 THEN 1 ELSE 0 END) AS multi_turn,
       count(DISTINCT text_hash) / count(*) AS distinct_text_share,
       avg(prompt_chars) AS mean_prompt_chars
FROM signals
GROUP BY account_id
"""
