"""Behavior views: operators that send the same templates, told apart by how they run."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest

from distillguard.linkage import (
    AccountActivity,
    GraphParams,
    behavior_views,
    candidate_graph,
    candidate_unit_matrix,
    graph_membership,
)
from distillguard.linkage.behavior_views import CATEGORICAL_COLUMNS

WEIGHTS = {"waves": 2.0, "days": 1.0, "creation": 2.0, "tier": 1.0, "network": 1.0,
           "client": 1.0, "payment": 1.0, "ip": 0.5}
PARAMS = GraphParams(content_neighbors=10, content_min_cosine=0.2,
                     shared_value_max_group={}, infra_edge_weight=0.5, leiden_resolution=1.0,
                     merge_min_cosine=0.3, behavior_weights=WEIGHTS, wave_seconds=60,
                     creation_batch_hours=2.0, content_edge_floor=0.2,
                     merge_min_behavior_cosine=0.25)
T0 = datetime(2026, 2, 23)


def _views(seconds: list[list[int]], created: list[float], **categorical: list[object]):
    pos = np.concatenate([np.full(len(s), i) for i, s in enumerate(seconds)]).astype(np.int64)
    activity = AccountActivity(pos, np.concatenate(seconds).astype(np.int64),
                               np.ones(len(pos), np.float32), np.array(created, float))
    values = {c: categorical.get(c, [None] * len(created)) for c in CATEGORICAL_COLUMNS}
    return behavior_views(activity, values, WEIGHTS, wave_seconds=60, creation_batch_hours=2.0)


def test_pair_cosine_is_the_weighted_mean_of_the_views() -> None:
    hour = 3600
    views = _views([[10, 20], [30, 40], [5 * hour]], [0.0, 1800.0, 90 * hour],
                   account_tier=["pro", "pro", "free"])
    total = sum(WEIGHTS[v] for v in ("waves", "days", "creation", "tier"))
    same, other = views.pair_cosines(np.array([0, 0]), np.array([1, 2]))
    # same minute, same hour, same creation batch (both grids), same tier: four views of eight
    assert same == pytest.approx(total / sum(WEIGHTS.values()))
    assert other == pytest.approx(0.0)


def test_creation_batches_straddling_a_bin_edge_still_agree() -> None:
    width = 2 * 3600
    views = _views([[0], [0], [0]], [width - 60.0, width + 60.0, 5.0 * width])
    creation = views.views["creation"]
    near = creation[0].multiply(creation[1]).sum()
    far = creation[0].multiply(creation[2]).sum()
    assert near == pytest.approx(0.5) and far == 0


def test_affinity_parts_add_up() -> None:
    views = _views([[10], [15], [9000]], [0.0, 60.0, 1e6], account_tier=["a", "a", "b"])
    total, parts = views.affinity(np.array([0, 0, 0]))
    assert np.allclose(total, sum(parts.values()))
    assert total[0] > total[2]


def _operators(n: int, *, same_behavior: bool) -> tuple[pa.Table, pa.Table, pa.Table]:
    """Two operators of ``n`` accounts sending the same template units. Each fires its
    accounts in its own waves and opens them in its own batch, on its own tier and network
    (unless ``same_behavior``)."""
    ids = [f"{op}{i}" for op in "xy" for i in range(n)]
    op = [0] * n + [1] * n
    y_shift = 0 if same_behavior else 1
    created = [T0 - timedelta(days=30 + 20 * o * y_shift, minutes=5 * i)
               for i, o in enumerate(op)]
    candidates = pa.table({
        "account_id": ids, "owner": ids, "sampled": [50] * len(ids), "template_share": [0.9] * len(ids),
        "payment_fingerprint": [None] * len(ids), "main_client_fingerprint": [None] * len(ids),
        "main_ip": [None] * len(ids), "account_created": pa.array(created, pa.timestamp("us")),
        "account_tier": ["pro" if o == 0 or same_behavior else "team" for o in op],
        "main_asn": [64500 + o * y_shift for o in op]})
    rng = np.random.default_rng(0)
    uses = {"node": [], "col": [], "n": []}
    for node in range(len(ids)):  # a candidate's node is its row
        for unit in rng.choice(40, size=12, replace=False):
            uses["node"].append(node)
            uses["col"].append(int(unit))
            uses["n"].append(int(rng.integers(1, 10)))
    waves = {0: rng.integers(0, 14 * 86400, 30), 1: rng.integers(0, 14 * 86400, 30)}
    epoch = int((T0 - datetime(1970, 1, 1)).total_seconds())
    activity = {"node": [], "second": [], "n": []}
    for node, o in enumerate(op):
        for start in waves[int(o) * y_shift]:
            activity["node"].append(node)
            activity["second"].append(epoch + int(start) + int(rng.integers(0, 20)))
            activity["n"].append(1)
    return (candidates, pa.table(uses, schema=pa.schema([("node", pa.int32()),
                                                         ("col", pa.int32()),
                                                         ("n", pa.int64())])),
            pa.table(activity))


def _communities(same_behavior: bool, params: GraphParams = PARAMS) -> dict[str, int]:
    candidates, uses, activity = _operators(20, same_behavior=same_behavior)
    graph = candidate_graph(candidates, candidate_unit_matrix(candidates, uses), params, activity)
    return {a: c for a, (c, _) in graph_membership(graph).items()}


def test_two_operators_on_the_same_templates_are_told_apart_by_behavior() -> None:
    community = _communities(same_behavior=False)
    x = {community[f"x{i}"] for i in range(20)}
    y = {community[f"y{i}"] for i in range(20)}
    assert len(x) == 1 and len(y) == 1 and x != y


def test_one_operator_stays_one_community() -> None:
    community = _communities(same_behavior=True)
    assert len(set(community.values())) == 1


def test_without_behavior_weights_the_shared_templates_merge_them() -> None:
    community = _communities(same_behavior=False, params=replace(PARAMS, behavior_weights={}))
    assert len(set(community.values())) == 1


def test_rest_cosines_match_the_rest_of_the_community_built_row_by_row() -> None:
    import scipy.sparse as sp

    from distillguard.linkage.behavior_views import normalize_rows, rest_cosines

    rng = np.random.default_rng(0)
    matrix = normalize_rows(sp.random(50, 30, density=0.2, format="csr", random_state=1,
                                      dtype=np.float32))
    community = rng.integers(0, 4, 50)
    expected = []
    for i in range(50):
        rest = np.asarray(matrix[(community == community[i]) & (np.arange(50) != i)]
                          .sum(axis=0)).ravel()
        row = matrix[i].toarray().ravel()
        norms = np.linalg.norm(rest) * np.linalg.norm(row)
        expected.append(rest @ row / norms if norms > 0 else 0.0)
    assert np.allclose(rest_cosines(matrix, community), expected, atol=1e-5)


def test_rest_cosines_leave_out_the_rows_of_the_own_label() -> None:
    import scipy.sparse as sp

    from distillguard.linkage.behavior_views import normalize_rows, rest_cosines

    rng = np.random.default_rng(1)
    matrix = normalize_rows(sp.random(60, 30, density=0.2, format="csr", random_state=2,
                                      dtype=np.float32))
    community = rng.integers(0, 3, 60)
    own = community * 10 + rng.integers(0, 4, 60)   # owners nested in communities
    expected = []
    for i in range(60):
        rest = np.asarray(matrix[(community == community[i]) & (own != own[i])]
                          .sum(axis=0)).ravel()
        row = matrix[i].toarray().ravel()
        norms = np.linalg.norm(rest) * np.linalg.norm(row)
        expected.append(rest @ row / norms if norms > 0 else 0.0)
    assert np.allclose(rest_cosines(matrix, community, own), expected, atol=1e-5)


def test_affinity_with_owners_ignores_what_one_owner_shares() -> None:
    # a and b: one owner sharing a tier and a creation batch; c: another owner, nothing alike
    views = _views([[10], [9000], [50000]], [0.0, 60.0, 1e6], account_tier=["t", "t", "u"])
    alone, _ = views.affinity(np.array([0, 0, 0]))
    across, _ = views.affinity(np.array([0, 0, 0]), ["o1", "o1", "o2"])
    assert alone[0] > 0 and across[0] == pytest.approx(0.0)


def test_row_cosines_are_the_dot_products_in_float64_rounded_once() -> None:
    import scipy.sparse as sp

    from distillguard.linkage.behavior_views import normalize_rows, row_cosines

    rng = np.random.default_rng(3)
    matrix = normalize_rows(sp.random(200, 40, density=0.3, format="csr", random_state=2,
                                      dtype=np.float32))
    sources, targets = rng.integers(0, 200, 5000), rng.integers(0, 200, 5000)
    dense = matrix.toarray().astype(np.float64)
    expected = (dense[sources] * dense[targets]).sum(axis=1)
    cosines = row_cosines(matrix, sources, targets)
    assert cosines.dtype == np.float32
    # float64 sums in another order differ far below float32's last bit
    assert np.array_equal(cosines, expected.astype(np.float32))


def test_row_cosines_of_rows_with_unsorted_or_repeated_columns() -> None:
    import scipy.sparse as sp

    from distillguard.linkage.behavior_views import row_cosines

    # row 0: column 2 twice (0.5 + 0.25) and columns out of order; row 1 sorted
    matrix = sp.csr_matrix((np.array([0.5, 1.0, 0.25, 2.0, 4.0], np.float32),
                            np.array([2, 0, 2, 0, 2]), np.array([0, 3, 5])), shape=(2, 3))
    assert not matrix.has_canonical_format
    assert row_cosines(matrix, np.array([0, 1, 0]), np.array([1, 1, 0])).tolist() == [
        1.0 * 2.0 + 0.75 * 4.0, 2.0 * 2.0 + 4.0 * 4.0, 1.0 + 0.75 * 0.75]
    assert row_cosines(matrix, np.array([], np.int64), np.array([], np.int64)).shape == (0,)


def test_row_cosines_of_rows_in_descending_column_order() -> None:
    import scipy.sparse as sp

    from distillguard.linkage.behavior_views import normalize_rows, row_cosines

    rng = np.random.default_rng(5)
    matrix = sp.random(300, 50, density=0.2, format="csr", random_state=4, dtype=np.float32)
    matrix.sum_duplicates()
    reversed_rows = matrix.copy()
    for row in range(matrix.shape[0]):  # the same rows, their values stored back to front
        part = slice(matrix.indptr[row], matrix.indptr[row + 1])
        reversed_rows.indices[part] = matrix.indices[part][::-1]
        reversed_rows.data[part] = matrix.data[part][::-1]
    sources, targets = rng.integers(0, 300, 4000), rng.integers(0, 300, 4000)
    assert np.array_equal(row_cosines(reversed_rows, sources, targets),
                          row_cosines(matrix, sources, targets))
    normalized = normalize_rows(matrix)
    dense = normalized.toarray().astype(np.float64)
    assert np.array_equal(row_cosines(normalized, sources, targets),
                          (dense[sources] * dense[targets]).sum(axis=1).astype(np.float32))


def test_rest_cosines_over_a_few_rows_at_a_time_are_the_same_bits(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    import scipy.sparse as sp

    from distillguard.linkage.behavior_views import normalize_rows, rest_cosines

    views_module = sys.modules["distillguard.linkage.behavior_views"]
    rng = np.random.default_rng(5)
    matrix = normalize_rows(sp.random(300, 60, density=0.2, format="csr", random_state=4,
                                      dtype=np.float32))
    community = rng.integers(0, 12, 300)
    own = np.unique(np.stack([community, rng.integers(0, 4, 300)]), axis=1,
                    return_inverse=True)[1].ravel()
    whole = [rest_cosines(matrix, community), rest_cosines(matrix, community, own)]
    dense = matrix.toarray()
    rest = np.array([dense[(community == community[i]) & (np.arange(300) != i)].sum(axis=0)
                     for i in range(300)])
    expected = (dense * rest).sum(axis=1) / np.maximum(np.linalg.norm(rest, axis=1), 1e-12)
    assert np.allclose(whole[0], expected, atol=1e-5)
    for values in (1, 13, 500):
        monkeypatch.setattr(views_module, "REST_COSINE_VALUES", values)
        assert rest_cosines(matrix, community).tobytes() == whole[0].tobytes()
        assert rest_cosines(matrix, community, own).tobytes() == whole[1].tobytes()


def _model_views(shares: list[float], since: list[int]) -> object:
    n = len(shares)
    activity = AccountActivity(np.arange(n, dtype=np.int64), np.zeros(n, np.int64),
                               np.ones(n, np.float32), np.zeros(n),
                               model_account_pos=np.arange(n, dtype=np.int64),
                               model=np.zeros(n, np.int64),
                               since_release=np.array(since, np.float32),
                               to_model=np.array(shares, np.float32) * np.array(since))
    values = {c: [None] * n for c in CATEGORICAL_COLUMNS}
    return behavior_views(activity, values, {"models": 1.0}, wave_seconds=60,
                          creation_batch_hours=2.0, model_share_step=0.2,
                          model_share_min_requests=10)


def test_the_models_view_joins_accounts_that_moved_alike() -> None:
    # nine in ten to the new model, twice; half; none; nine in ten of too few requests
    views = _model_views([0.9, 0.88, 0.5, 0.0, 0.9], [100, 50, 80, 100, 5])
    models = views.views["models"]
    alike, apart = views.pair_cosines(np.array([0, 0]), np.array([1, 2]))
    assert alike > 0.4 and apart == 0
    # staying on the old model is no decision, and five requests are no share
    assert models[3].nnz == 0 and models[4].nnz == 0


def test_stacked_rows_give_the_pair_cosines() -> None:
    hour = 3600
    views = _views([[10, 20], [30, 4 * hour], [5 * hour]], [0.0, 1800.0, 90 * hour],
                   account_tier=["pro", "pro", "free"])
    stacked = views.stacked()
    s, t = np.array([0, 0, 1]), np.array([1, 2, 2])
    dots = np.asarray(stacked[s].multiply(stacked[t]).sum(axis=1)).ravel()
    assert np.allclose(dots, views.pair_cosines(s, t), atol=1e-6)


def test_group_agreement_is_the_mean_over_pairs() -> None:

    hour = 3600
    views = _views([[10], [20], [30], [9 * hour], [9 * hour + 5]],
                   [0.0, 60.0, 120.0, 50 * hour, 50 * hour],
                   account_tier=["a", "a", "b", "b", "b"])
    community = np.array([0, 0, 0, 1, 1])
    across, within = views.group_agreement(community, np.array([0]), np.array([1]))
    pair = {(i, j): views.pair_cosines(np.array([i]), np.array([j]))[0]
            for i in range(5) for j in range(5)}
    assert across[0] == pytest.approx(np.mean([pair[i, j] for i in (0, 1, 2) for j in (3, 4)]))
    assert within[0] == pytest.approx(np.mean([pair[0, 1], pair[0, 2], pair[1, 2]]))
    assert within[1] == pytest.approx(pair[3, 4])


def test_group_agreement_inside_leaves_out_pairs_of_one_owner() -> None:

    # a and b share a card (payment view); c is another owner with nothing in common
    views = _views([[10], [9000], [50000]], [0.0, 1e5, 1e6], payment_fingerprint=["p", "p", "q"])
    community = np.zeros(3, np.int64)
    _, alone = views.group_agreement(community, np.array([0]), np.array([0]))
    _, across_owners = views.group_agreement(community, np.array([0]), np.array([0]),
                                             owners=np.array([0, 0, 1]))
    assert alone[0] > 0 and across_owners[0] == pytest.approx(0.0, abs=1e-6)


def test_the_operator_separation_policy_keeps_operators_apart_and_whole() -> None:
    from pathlib import Path

    from distillguard.verdict.policy import load_policy

    docs = Path(__file__).resolve().parents[2] / "docs" / "policy-operator-separation.yaml"
    params = replace(load_policy(docs).graph, content_neighbors=10)
    community = _communities(same_behavior=False, params=params)
    x = {community[f"x{i}"] for i in range(20)}
    y = {community[f"y{i}"] for i in range(20)}
    assert len(x) == 1 and len(y) == 1 and x != y
    assert len(set(_communities(same_behavior=True, params=params).values())) == 1
