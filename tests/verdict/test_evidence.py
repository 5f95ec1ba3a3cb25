"""Per-account evidence: the SQL that joins the per-account tables, read by column name."""

from __future__ import annotations

from datetime import datetime

import duckdb
import pyarrow as pa

from distillguard.signals import TECHNIQUES
from distillguard.verdict.evidence import (
    ACCOUNT_EVIDENCE_SQL,
    account_evidence,
    set_campaign_template_shares,
)

T0, T1 = datetime(2026, 3, 1, 8), datetime(2026, 3, 2, 9)


def _tables() -> duckdb.DuckDBPyConnection:
    """Three accounts: one with a sample and templates, one sampled without templates,
    one seen but never sampled (no content, no template row)."""
    con = duckdb.connect()
    behavior = pa.table({  # noqa: F841 - read by DuckDB
        "account_id": ["b", "a", "c"], "exchanges": [40, 400, 2],
        "first_seen": [T0, T0, T1], "last_seen": [T1, T1, T1], "hours_active": [3, 22, 1],
        "org_id": [None, "org-1", None], "payment_fingerprint": ["pay-b", "pay-a", None],
        "main_ip": ["198.51.100.2", "198.51.100.1", None], "main_asn": [64501, 64500, None],
        "main_client_fingerprint": [None, "ja4-x", None], "account_tier": ["free", "pro", None],
        "verified": [False, True, None],
        "account_created": pa.array([None] * 3, pa.timestamp("us"))})
    content = pa.table({  # noqa: F841
        "account_id": ["a", "b"], "sampled": [200, 40],
        **{t: [0.5 if i == 0 else 0.0, 0.0] for i, t in enumerate(TECHNIQUES)},
        "any_technique": [0.5, 0.0], "multi_turn": [0.05, 0.9]})
    template = pa.table({"account_id": ["a"], "template_share": [0.75],  # noqa: F841
                         "template_requests": [150]})
    for name in ("behavior", "content", "template"):
        con.execute(f"CREATE TABLE account_{name} AS SELECT * FROM {name}")
    return con


def test_one_row_per_account_read_by_name_in_account_order() -> None:
    evidence = account_evidence(_tables().sql(ACCOUNT_EVIDENCE_SQL).to_arrow_table())
    assert [e.account_id for e in evidence] == ["a", "b", "c"]
    a, b, c = evidence
    assert (a.owner, b.owner, c.owner) == ("org-1", "pay-b", "c")  # org, else payment, else self
    assert (a.exchanges, a.sampled, a.template_share, a.hours_active) == (400, 200, 0.75, 22)
    assert a.technique_shares == {t: (0.5 if i == 0 else 0.0) for i, t in enumerate(TECHNIQUES)}
    assert (a.any_technique, a.multi_turn, a.verified, a.main_asn) == (0.5, 0.05, True, 64500)
    assert (a.first_seen, a.last_seen) == (T0, T1)
    assert (b.template_share, b.multi_turn, b.main_client_fingerprint) == (0.0, 0.9, None)
    assert (c.sampled, c.template_share, c.any_technique, c.verified) == (0, 0.0, 0.0, False)
    assert all(set(e.technique_shares) == set(TECHNIQUES) for e in evidence)


def test_campaign_template_share_is_over_the_sample() -> None:
    evidence = account_evidence(_tables().sql(ACCOUNT_EVIDENCE_SQL).to_arrow_table())
    set_campaign_template_shares(evidence, {"a": 50})
    assert [e.campaign_template_share for e in evidence] == [0.25, 0.0, 0.0]
