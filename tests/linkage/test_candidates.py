"""Graph candidates and the graph built from their template use, on a few rows."""

from __future__ import annotations

import pyarrow as pa

from distillguard.linkage import (
    ACCOUNT_COMMUNITY_SCHEMA,
    GraphParams,
    candidate_graph,
    candidate_ids,
    candidate_unit_matrix,
    community_table,
    graph_candidates,
    graph_membership,
)

PARAMS = GraphParams(content_neighbors=5, content_min_cosine=0.2,
                     shared_value_max_group={"payment_fingerprint": 3},
                     infra_edge_weight=0.5, leiden_resolution=0.5, merge_min_cosine=0.9)


def _accounts() -> pa.Table:
    return pa.table({
        "account_id": ["a", "b", "c", "d", "e"],
        "owner": ["a", "b", "p", "p", "e"],
        "sampled": [10, 10, 10, 10, 0],
        "template_share": [0.8, 0.9, 0.25, 0.35, 0.0],  # 8, 9, 2 (2.5 rounds to even), 4, 0
        "payment_fingerprint": [None, None, "p", "p", None],
        "main_client_fingerprint": ["x", "x", "x", "x", None],
        "main_ip": [None] * 5,
        "account_created": pa.array([None] * 5, pa.timestamp("us")),
        "account_tier": ["pro"] * 5,
        "main_asn": [64500] * 5,
        "hours_active": [1, 2, 3, 4, 5],  # other columns are ignored
    })


def test_candidates_need_enough_template_requests() -> None:
    candidates = graph_candidates(_accounts(), 3)
    assert candidates.column("account_id").to_pylist() == ["a", "b", "d"]
    assert "hours_active" not in candidates.column_names
    ids = candidate_ids(candidates)
    assert ids.column("account_id").to_pylist() == ["a", "b", "d"]
    assert ids.column("node").to_pylist() == [0, 1, 2]


def test_graph_links_candidates_on_units_and_payment() -> None:
    accounts = _accounts()
    candidates = graph_candidates(accounts, 2)  # a, b, c, d
    unit_uses = pa.table({"node": [0, 1, 0, 1, 2],  # a, b, a, b, c
                          "col": pa.array([1, 1, 0, 0, 2], pa.int32()),
                          "n": [8, 9, 4, 5, 2]})
    graph = candidate_graph(candidates, candidate_unit_matrix(candidates, unit_uses), PARAMS)
    assert graph.accounts == ["a", "b", "c", "d"]
    membership = graph_membership(graph)
    assert membership["a"][0] == membership["b"][0]
    assert membership["c"][0] == membership["d"][0]  # one payment method
    assert membership["a"][0] != membership["c"][0]
    assert membership["a"][1] > 0.9  # a uses what b uses
    table = community_table(graph, {membership["a"][0]})
    assert table.schema == ACCOUNT_COMMUNITY_SCHEMA
    assert sorted(table.column("account_id").to_pylist()) == ["a", "b"]


def test_candidates_without_shared_units_still_get_a_community_each() -> None:
    candidates = graph_candidates(_accounts(), 3)
    empty = pa.table({"node": pa.array([], pa.int32()), "col": pa.array([], pa.int32()),
                      "n": pa.array([], pa.int64())})
    assert candidate_unit_matrix(candidates, empty) is None
    membership = graph_membership(candidate_graph(candidates, None, PARAMS))
    assert set(membership) == {"a", "b", "d"}
    assert all(affinity == 0.0 for _, affinity in membership.values())


def test_models_sql_counts_requests_since_each_release_during_the_log() -> None:
    from datetime import datetime

    import duckdb

    from distillguard.linkage import CANDIDATE_MODELS_SQL

    con = duckdb.connect()
    day = [datetime(2026, 3, d) for d in range(1, 6)]
    con.register("signals", pa.table({
        "account_id": ["a", "a", "a", "a", "b"],
        "ts": pa.array(day, pa.timestamp("us")),
        "model": ["old", "old", "new", "old", "new"]}))
    con.register("graph_candidates", pa.table({"account_id": ["a", "b"],
                                               "node": pa.array([0, 1], pa.int32())}))
    con.register("releases", pa.table({
        "model": ["old", "new"],
        "released_at": pa.array([datetime(2025, 1, 1), datetime(2026, 3, 2, 12)],
                                pa.timestamp("us"))}))
    rows = sorted(con.sql(CANDIDATE_MODELS_SQL).fetchall())
    # the model released before the log began is nobody's move; a: 2 requests since the
    # release (3 and 4 March), 1 to the new model; b: 1 of 1
    assert rows == [(0, "new", 2, 1), (1, "new", 1, 1)]
