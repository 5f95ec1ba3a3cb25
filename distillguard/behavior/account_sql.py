"""Per-account behavioral features, as SQL text an engine runs.

Tables read: ``exchanges`` (every exchange), ``signals`` (the sampled
exchanges with their content signals, see ``signals.sampled_rows``) and
``releases`` (model, released_at). Each query is a SELECT the engine stores
under the table name its constant says (``account_behavior``,
``account_release``, ``account_content``). Only what a later stage reads is
computed: volume and time span, hours of the day, the account's organization,
tier, verification, creation time, payment method and main infrastructure.

Every query in ``behavior``, ``linkage`` and ``verdict`` is written in DuckDB's
dialect; the Spark engine translates it (``engines.spark_sql``), so the two
engines run one text. Results must not depend on row order: a "most frequent
value" breaks ties by the greatest value, never by whichever row came first.
"""

from __future__ import annotations

from distillguard.signals.lexicon import TECHNIQUES

__all__ = ["ACCOUNT_BEHAVIOR_SQL", "ACCOUNT_CONTENT_SQL", "ACCOUNT_RELEASE_SQL"]

ACCOUNT_BEHAVIOR_SQL = """
WITH value_counts AS (
    SELECT account_id, 'ip' AS kind, ip AS value, count(*) AS n
    FROM exchanges WHERE ip IS NOT NULL GROUP BY ALL
    UNION ALL
    SELECT account_id, 'client', client_fingerprint, count(*)
    FROM exchanges WHERE client_fingerprint IS NOT NULL GROUP BY ALL
    UNION ALL
    SELECT account_id, 'asn', CAST(asn AS VARCHAR), count(*)
    FROM exchanges WHERE asn IS NOT NULL GROUP BY ALL
),
main_values AS (
    SELECT account_id,
           max({'n': n, 'v': value}) FILTER (WHERE kind = 'ip').v AS main_ip,
           max({'n': n, 'v': value}) FILTER (WHERE kind = 'client').v AS main_client_fingerprint,
           CAST(max({'n': n, 'v': value}) FILTER (WHERE kind = 'asn').v AS BIGINT) AS main_asn
    FROM value_counts GROUP BY account_id
),
per_account AS (
    SELECT account_id,
           count(*) AS exchanges,
           min(ts) AS first_seen,
           max(ts) AS last_seen,
           count(DISTINCT hour(ts)) AS hours_active,
           max(org_id) AS org_id,
           max(account_tier) AS account_tier,
           bool_or(coalesce(verified, false)) AS verified,
           min(account_created) AS account_created,
           max(payment_fingerprint) AS payment_fingerprint
    FROM exchanges GROUP BY account_id
)
SELECT p.*, m.main_ip, m.main_client_fingerprint, m.main_asn
FROM per_account p
LEFT JOIN main_values m USING (account_id)
"""

# Per account and release: its traffic in the 24 h after the release, and how
# much of it went to the new model.
ACCOUNT_RELEASE_SQL = """
SELECT e.account_id, r.model AS release_model, r.released_at,
       count(*) AS window_exchanges,
       count(*) FILTER (WHERE e.model = r.model) AS window_new_model
FROM exchanges e
JOIN releases r ON e.ts >= r.released_at AND e.ts < r.released_at + INTERVAL 24 HOUR
GROUP BY e.account_id, r.model, r.released_at
"""

# Per account, from its sample: the share of requests using each technique (a
# strong lexicon match, score 1) and any of them, continuing a conversation.
_TECHNIQUE_SHARES = "".join(f"avg(CASE WHEN {t} >= 1 THEN 1 ELSE 0 END) AS {t},\n       "
                            for t in TECHNIQUES)
_ANY_TECHNIQUE = f"greatest({', '.join(TECHNIQUES)})"
ACCOUNT_CONTENT_SQL = f"""
SELECT account_id,
       count(*) AS sampled,
       {_TECHNIQUE_SHARES}avg(CASE WHEN {_ANY_TECHNIQUE} >= 1 THEN 1 ELSE 0 END) AS any_technique,
       avg(CASE WHEN prior_turns > 0 THEN 1 ELSE 0 END) AS multi_turn,
       count(DISTINCT text_hash) / count(*) AS distinct_text_share,
       avg(prompt_chars) AS mean_prompt_chars
FROM signals
GROUP BY account_id
"""
