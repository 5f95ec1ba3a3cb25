from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from distillguard.linkage import (
    GraphParams,
    account_unit_matrix,
    build_account_graph,
    content_neighbors,
    leiden_communities,
    neighbors_and_pair_cosines,
    shared_value_edges,
)

PARAMS = GraphParams(content_neighbors=5, content_min_cosine=0.2,
                     shared_value_max_group={"payment_fingerprint": 3},
                     infra_edge_weight=0.5, leiden_resolution=0.5, merge_min_cosine=0.9)


def test_accounts_using_the_same_units_are_neighbours() -> None:
    # accounts 0 and 1 use units 0 and 1; account 2 uses unit 2 only
    matrix = account_unit_matrix(np.array([0, 0, 1, 1, 2]), np.array([0, 1, 0, 1, 2]),
                                 np.array([5.0, 5.0, 4.0, 6.0, 3.0]),
                                 np.array([10.0, 10.0, 3.0]), 3)
    src, dst, cos = content_neighbors(matrix, k=2, min_cosine=0.5)
    assert (src.tolist(), dst.tolist()) == ([0], [1])
    assert cos[0] > 0.9


def test_block_size_sets_memory_not_neighbours() -> None:
    rng = np.random.default_rng(4)
    pairs = rng.integers(0, 40, size=(600, 2))
    matrix = account_unit_matrix(pairs[:, 0] % 300, pairs[:, 1], rng.random(600) + 0.5,
                                 np.full(300, 10.0), 40)
    edges = content_neighbors(matrix, k=4, min_cosine=0.1)
    assert len(edges[0]) > 50
    for block_rows, threads in ((1, 1), (7, 1), (64, 1), (7, 2), (64, 3)):
        small = content_neighbors(matrix, k=4, min_cosine=0.1, block_rows=block_rows,
                                  threads=threads)
        assert all(np.array_equal(a, b) for a, b in zip(small, edges, strict=True))


def test_pair_cosines_from_the_search_are_the_rows_dot_products() -> None:
    rng = np.random.default_rng(5)
    pairs = rng.integers(0, 40, size=(900, 2))
    matrix = account_unit_matrix(pairs[:, 0] % 120, pairs[:, 1], rng.random(900) + 0.5,
                                 np.full(120, 10.0), 40)
    sources, targets = rng.integers(0, 120, 300), rng.integers(0, 120, 300)
    expected = np.asarray(matrix[sources].multiply(matrix[targets]).sum(axis=1)).ravel()
    for block_rows, threads in ((7, 1), (50, 2), (None, 1)):
        *edges, cosines = neighbors_and_pair_cosines(matrix, sources, targets, k=4,
                                                     min_cosine=0.1, block_rows=block_rows,
                                                     threads=threads)
        np.testing.assert_allclose(cosines, expected, rtol=1e-5, atol=1e-6)
        assert all(np.array_equal(a, b) for a, b in
                   zip(edges, content_neighbors(matrix, k=4, min_cosine=0.1), strict=True))


def test_columns_multiplied_dense_give_the_sparse_products_neighbours(monkeypatch) -> None:
    rng = np.random.default_rng(6)
    # a few units every account uses (dense), many rare ones (sparse)
    common = np.repeat(np.arange(200), 3), np.tile(np.arange(3), 200)
    rare = rng.integers(0, 200, 800), rng.integers(3, 400, 800)
    rows, units = np.concatenate([common[0], rare[0]]), np.concatenate([common[1], rare[1]])
    matrix = account_unit_matrix(rows, units, rng.random(len(rows)) + 0.5,
                                 np.full(200, 10.0), 400)
    split = content_neighbors(matrix, k=5, min_cosine=0.1)
    monkeypatch.setattr("distillguard.linkage.content_similarity.DENSE_CELLS", 0)
    whole = content_neighbors(matrix, k=5, min_cosine=0.1)
    assert len(split[0]) > 100
    assert np.array_equal(split[0], whole[0]) and np.array_equal(split[1], whole[1])
    np.testing.assert_allclose(split[2], whole[2], rtol=1e-5)


def test_shared_values_chain_groups_and_skip_crowds() -> None:
    src, dst = shared_value_edges(["p1", "p1", "p1", None, "p2", "crowd", "crowd", "crowd",
                                   "crowd"], max_group=3)
    assert sorted(zip(src.tolist(), dst.tolist(), strict=True)) == [(0, 1), (1, 2)]


def test_leiden_separates_two_cliques() -> None:
    edges = [(0, 1), (1, 2), (0, 2), (3, 4), (4, 5), (3, 5), (2, 3)]
    src, dst = np.array(edges).T
    membership = leiden_communities(6, src, dst, np.array([1, 1, 1, 1, 1, 1, 0.1]),
                                    resolution=1.0, seed=1)
    assert len(set(membership[:3])) == 1 and len(set(membership[3:])) == 1
    assert membership[0] != membership[3]


def test_graph_links_content_and_payment_and_scores_affinity() -> None:
    matrix = account_unit_matrix(np.array([0, 1, 2]), np.array([0, 0, 1]),
                                 np.array([8.0, 9.0, 7.0]), np.full(4, 10.0), 2)
    graph = build_account_graph(
        ["a", "b", "c", "d"], matrix,
        {"payment_fingerprint": [None, None, "p", "p"]}, PARAMS)
    assert graph.community[0] == graph.community[1]
    assert graph.community[2] == graph.community[3]
    assert graph.community[0] != graph.community[2]
    assert graph.affinity[0] > 0.9


def test_communities_with_the_same_template_mix_are_merged() -> None:
    from distillguard.linkage.account_graph import merge_similar_communities

    # a cluster over units {0, 1}, a variant over {0, 1, 2}, and an unrelated one over {5}
    matrix = account_unit_matrix(np.array([0, 0, 1, 1, 2, 2, 2, 3]),
                                 np.array([0, 1, 0, 1, 0, 1, 2, 5]),
                                 np.full(8, 5.0), np.full(4, 10.0), 6)
    merged = merge_similar_communities(matrix, np.array([0, 0, 1, 2]), 0.3)
    assert merged[0] == merged[2] and merged[3] != merged[0]


def test_split_communities_cuts_a_community_of_two_cliques_joined_by_one_edge() -> None:
    from distillguard.linkage.account_graph import split_communities

    clique = [(a, b) for a in range(6) for b in range(a + 1, 6)]
    edges = clique + [(a + 6, b + 6) for a, b in clique] + [(0, 6)]
    s, t = (np.array(x) for x in zip(*edges, strict=True))
    parts = split_communities(np.zeros(12, np.int64), s, t, np.ones(len(s), np.float32),
                              resolution=1.0)
    assert len(set(parts[:6])) == 1 and len(set(parts[6:])) == 1 and parts[0] != parts[6]


def test_weak_edges_of_a_small_group_are_dropped_relative_to_its_strongest() -> None:
    from distillguard.linkage.account_graph import _relatively_strong

    s, t = np.array([0, 0, 1]), np.array([1, 2, 2])
    w = np.array([1.0, 0.1, 0.9], np.float32)
    kept = _relatively_strong(s, t, w, 3, 0.35)
    assert list(zip(kept[0], kept[1], strict=True)) == [(0, 1), (1, 2)]


def _pools(rows_per_pool: int, operators: list[int], seed: int = 0) -> sp.csr_matrix:
    """Behavior rows (unit length), a pool per item of ``operators``: each row spreads over
    its operator's ten columns at random and has one column of its pool's own (its pools
    agree inside at about 0.8 and with each other's at about 0.6)."""
    rng = np.random.default_rng(seed)
    rows = []
    for pool, operator in enumerate(operators):
        for _ in range(rows_per_pool):
            row = np.zeros(40)
            row[operator * 10:(operator + 1) * 10] = rng.random(10)
            row[30 + pool] = 1.0
            rows.append(row / np.linalg.norm(row))
    return sp.csr_matrix(np.array(rows, dtype=np.float32))


def test_fragments_of_one_operator_are_joined_and_two_operators_kept_apart() -> None:
    from distillguard.linkage.operators import merge_fragments

    stacked = _pools(6, [0, 0, 1, 1])
    fragment = np.repeat(np.arange(4), 6)
    joined = merge_fragments(stacked, fragment, np.zeros(24, np.int64), min_ratio=0.35)
    assert len(set(joined[:12])) == 1 and len(set(joined[12:])) == 1
    assert joined[0] != joined[12]
    # fragments of different communities are never joined
    apart = merge_fragments(stacked, fragment, np.repeat([0, 1, 0, 1], 6), min_ratio=0.0)
    assert len(set(apart)) == 2 and set(apart[:6]) == set(apart[12:18])


def test_a_view_that_tells_two_groups_apart_vetoes_their_join() -> None:
    from distillguard.linkage.operators import ViewBar, merge_fragments

    stacked = _pools(6, [0, 0, 0, 0])  # all four pools alike: one operator by the mean
    fragment = np.repeat(np.arange(4), 6)
    block = np.zeros(24, np.int64)
    assert len(set(merge_fragments(stacked, fragment, block, min_ratio=0.35))) == 1
    # a creation view: pools 0-1 opened in one batch, pools 2-3 in another
    batches = sp.csr_matrix(np.repeat(np.eye(2, dtype=np.float32), 12, axis=0))
    vetoed = merge_fragments(stacked, fragment, block, min_ratio=0.35,
                             vetoes=[ViewBar(batches, min_ratio=0.1, min_inside=0.05)])
    assert len(set(vetoed[:12])) == 1 and len(set(vetoed[12:])) == 1
    assert vetoed[0] != vetoed[12]
    # nor one that only a few accounts of a group show in: pools 0-2 opened in one
    # batch, 2 of pool 3's 6 accounts in another, the rest unknown
    few_shown = np.zeros((24, 2), np.float32)
    few_shown[:18, 0] = 1.0
    few_shown[18:20, 1] = 1.0
    few = merge_fragments(stacked, fragment, block, min_ratio=0.35,
                          vetoes=[ViewBar(sp.csr_matrix(few_shown), min_ratio=0.1,
                                          min_inside=0.05)])
    assert len(set(few)) == 1
    # a view in which no group agrees inside (each account its own batch) vetoes nothing
    scattered = sp.csr_matrix(np.eye(24, dtype=np.float32))
    kept = merge_fragments(stacked, fragment, block, min_ratio=0.35,
                           vetoes=[ViewBar(scattered, min_ratio=0.1, min_inside=0.05)])
    assert len(set(kept)) == 1


def test_group_agreement_ratio_is_across_over_the_more_coherent_inside() -> None:
    from distillguard.linkage.operators import _fragment_sums, group_agreement_ratio

    # group 0: two identical rows (inside 1.0); group 1: two rows of cosine 0.36
    rows = sp.csr_matrix(np.array([[1, 0, 0], [1, 0, 0], [0.6, 0.8, 0], [0.6, 0, 0.8]]))
    ratio = group_agreement_ratio(*_fragment_sums(rows, np.array([0, 0, 1, 1])))
    # across: the mean of the four cosines of one row of each (0.6), over 1.0
    assert ratio[0, 1] == ratio[1, 0] == pytest.approx(0.6)
    # a group of one has no inside: the other's stands for both
    alone = group_agreement_ratio(*_fragment_sums(rows[1:], np.array([0, 1, 1])))
    assert alone[0, 1] == pytest.approx(0.6 / 0.36)


def test_groups_opened_together_and_routed_alike_are_joined_whatever_the_mean() -> None:
    from distillguard.linkage.operators import ViewBar, merge_fragments

    stacked = _pools(6, [0, 1])  # two pools that agree in nothing else
    fragment = np.repeat(np.arange(2), 6)
    block = np.zeros(12, np.int64)
    assert len(set(merge_fragments(stacked, fragment, block, min_ratio=0.35))) == 2
    together = sp.csr_matrix(np.ones((12, 1), np.float32))  # one batch, one routing
    joined = merge_fragments(stacked, fragment, block, min_ratio=0.35,
                             supports=[ViewBar(together, 0.4, 0.05), ViewBar(together, 0.4, 0.05)])
    assert len(set(joined)) == 1
    # every support view must agree: one that does not keeps them apart
    apart = sp.csr_matrix(np.repeat(np.eye(2, dtype=np.float32), 6, axis=0))
    kept = merge_fragments(stacked, fragment, block, min_ratio=0.35,
                           supports=[ViewBar(together, 0.4, 0.05), ViewBar(apart, 0.4, 0.05)])
    assert len(set(kept)) == 2
