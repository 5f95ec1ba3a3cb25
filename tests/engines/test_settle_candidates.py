"""Candidates of the account graph once crowd units no longer count: a cascade of
ordinary accounts leaves, a campaign stays (``engines.scan.settle_candidates``)."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from distillguard.engines.scan import settle_candidates
from distillguard.engines.sql_engine import DuckDBEngine
from distillguard.linkage import graph_candidates
from distillguard.verdict.policy import load_policy


def _uses(account: str, unit: int, requests: int, first_row: int) -> list[tuple]:
    return [(first_row + i, account, account, unit) for i in range(requests)]


def _template_uses() -> pa.Table:
    """Campaign a, b, c sends unit 1 only; passers-by u1-u3 send unit 2 once each;
    p, q, r send unit 2 three times and unit 3 once; x, y, z send unit 3 three times."""
    rows: list[tuple] = []
    for account, unit, n in [("a", 1, 5), ("b", 1, 5), ("c", 1, 5),
                             ("u1", 2, 1), ("u2", 2, 1), ("u3", 2, 1),
                             ("p", 2, 3), ("q", 2, 3), ("r", 2, 3),
                             ("x", 3, 3), ("y", 3, 3), ("z", 3, 3)]:
        rows += _uses(account, unit, n, 100 * len(rows) + 1)
    for account in ("p", "q", "r"):  # one more request each, on unit 3
        rows += _uses(account, 3, 1, 100 * len(rows) + 1)
    row_id, account_id, owner, unit = zip(*rows, strict=True)
    return pa.table({"row_id": pa.array(row_id, pa.int64()), "account_id": account_id,
                     "owner": owner, "unit": pa.array(unit, pa.int64())})


def _accounts(uses: pa.Table) -> pa.Table:
    ids = sorted(set(uses.column("account_id").to_pylist()))
    requests = {a: uses.filter(pc.equal(uses.column("account_id"), a)).num_rows
                for a in ids}
    n = len(ids)
    return pa.table({
        "account_id": ids, "owner": ids, "sampled": [10] * n,
        "template_share": [requests[a] / 10 for a in ids],
        "payment_fingerprint": [None] * n, "main_client_fingerprint": [None] * n,
        "main_ip": [None] * n, "account_created": pa.array([None] * n, pa.timestamp("us")),
        "account_tier": ["pro"] * n, "main_asn": [1] * n})


def test_ordinary_accounts_leave_in_turn_and_the_campaign_stays() -> None:
    uses = _template_uses()
    engine = DuckDBEngine(duckdb.connect())
    engine.register("template_uses", uses)
    policy = load_policy()
    first = graph_candidates(_accounts(uses), policy.candidate_min_template_requests)
    assert first.column("account_id").to_pylist() == [
        "a", "b", "c", "p", "q", "r", "x", "y", "z"]
    settled = settle_candidates(engine, first, policy)
    # unit 2 is a crowd's (u1-u3 are outside), so p, q, r keep one request and leave;
    # then unit 3 is a crowd's too (p, q, r are outside now), and x, y, z leave.
    assert settled.column("account_id").to_pylist() == ["a", "b", "c"]
    assert sorted(r[0] for r in engine.rows("SELECT unit FROM crowd_units")) == [2, 3]


def test_no_candidates_settle_to_none() -> None:
    uses = _template_uses()
    engine = DuckDBEngine(duckdb.connect())
    engine.register("template_uses", uses)
    empty = graph_candidates(_accounts(uses), 100)
    assert settle_candidates(engine, empty, load_policy()).num_rows == 0
