"""The account graph: content neighbours weighed by behavior, shared infrastructure, and
its communities.

Content says what is harvested; behavior says who harvests it. A content edge
keeps ``content_edge_floor`` of its weight whatever the two accounts' behavior,
and the rest in proportion to their behavior cosine (``behavior_views``): two
operators sending the same public templates are linked weakly, one operator's
accounts strongly. Communities whose template use points the same way are
joined only when their behavior does too (``merge_min_behavior_cosine``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from distillguard.linkage.behavior_views import BehaviorViews, rest_cosines
from distillguard.linkage.communities import leiden_communities
from distillguard.linkage.content_similarity import (
    content_neighbors,
    normalize_rows,
)
from distillguard.linkage.shared_values import shared_value_edges

__all__ = ["AccountGraph", "GraphParams", "build_account_graph"]

# With behavior views, each account's content neighbours are drawn from this many
# times ``content_neighbors`` candidates and the heaviest after weighing are kept.
BEHAVIOR_CANDIDATES = 3


@dataclass(frozen=True)
class GraphParams:
    content_neighbors: int
    content_min_cosine: float
    shared_value_max_group: dict[str, int]
    infra_edge_weight: float
    leiden_resolution: float
    merge_min_cosine: float
    behavior_weights: dict[str, float] = field(default_factory=dict)
    wave_seconds: int = 60
    creation_batch_hours: float = 2.0
    content_edge_floor: float = 1.0
    merge_min_behavior_cosine: float = 0.0


@dataclass
class AccountGraph:
    """Nodes are candidate accounts (by position); ``community`` numbers each one."""

    accounts: list[str]
    sources: np.ndarray
    targets: np.ndarray
    weights: np.ndarray
    kinds: list[str]
    community: np.ndarray
    affinity: np.ndarray
    behavior_affinity: np.ndarray | None = None
    behavior_parts: dict[str, np.ndarray] = field(default_factory=dict)

    def edge_kinds_of(self, node: int) -> set[str]:
        hit = (self.sources == node) | (self.targets == node)
        return {self.kinds[i] for i in np.flatnonzero(hit)}


def build_account_graph(accounts: list[str], matrix: sp.csr_matrix | None,
                        shared_values: dict[str, Sequence[object | None]],
                        params: GraphParams, *, behavior: BehaviorViews | None = None,
                        owners: Sequence[object] | None = None, seed: int = 0,
                        threads: int = 1) -> AccountGraph:
    """Link candidate accounts and find communities.

    ``matrix`` is the accounts' template use (``content_similarity.account_unit_matrix``,
    a row per account; None: no shared units); ``shared_values`` maps an
    infrastructure field name to one value per account; ``behavior`` holds each
    account's stacked behavior views (``behavior_views.behavior_views``); ``owners``
    (one per account) makes each account's behavior affinity the one with its
    community's other owners.
    ``threads``: how many blocks of the nearest-neighbour search run at once.
    """
    n = len(accounts)
    sources, targets, weights, kinds = [], [], [], []
    if matrix is not None and not matrix.nnz:
        matrix = None
    if matrix is not None:
        k = params.content_neighbors
        s, t, w = content_neighbors(matrix, k=k * (BEHAVIOR_CANDIDATES if behavior else 1),
                                    min_cosine=params.content_min_cosine, threads=threads)
        if behavior is not None:
            floor = params.content_edge_floor
            w = w * (floor + (1.0 - floor) * behavior.pair_cosines(s, t))
            s, t, w = _strongest_per_node(s, t, w, k)
        sources.append(s)
        targets.append(t)
        weights.append(w)
        kinds += ["content"] * len(s)
    for name, values in shared_values.items():
        max_group = params.shared_value_max_group.get(name, 0)
        if max_group < 2:
            continue
        s, t = shared_value_edges(values, max_group=max_group)
        sources.append(s)
        targets.append(t)
        weights.append(np.full(len(s), params.infra_edge_weight, dtype=np.float32))
        kinds += [name] * len(s)
    src = np.concatenate(sources) if sources else np.zeros(0, dtype=np.int64)
    dst = np.concatenate(targets) if targets else np.zeros(0, dtype=np.int64)
    w = np.concatenate(weights) if weights else np.zeros(0, dtype=np.float32)
    community = leiden_communities(n, src, dst, w, resolution=params.leiden_resolution,
                                   seed=seed)
    if matrix is not None:
        community = merge_similar_communities(
            matrix, community, params.merge_min_cosine, behavior=behavior,
            min_behavior_cosine=params.merge_min_behavior_cosine)
    affinity = (community_affinity(matrix, community) if matrix is not None
                else np.zeros(n, dtype=np.float32))
    behavior_affinity, parts = (behavior.affinity(community, owners) if behavior is not None
                                else (None, {}))
    return AccountGraph(accounts, src, dst, w, kinds, community, affinity, behavior_affinity,
                        parts)


def _centroid_cosines(matrix: sp.csr_matrix, groups: sp.csr_matrix) -> sp.csr_matrix:
    centroids = normalize_rows((groups @ matrix).tocsr())
    return (centroids @ centroids.T).tocsr()


def _strongest_per_node(sources: np.ndarray, targets: np.ndarray, weights: np.ndarray,
                        k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The edges among the ``k`` heaviest of either end."""
    if not len(sources):
        return sources, targets, weights
    node = np.concatenate([sources, targets])
    edge = np.tile(np.arange(len(sources)), 2)
    order = np.lexsort((-np.concatenate([weights, weights]), node))
    node, edge = node[order], edge[order]
    starts = np.searchsorted(node, node, side="left")
    keep = np.zeros(len(sources), bool)
    keep[edge[np.arange(len(node)) - starts < k]] = True
    return sources[keep], targets[keep], weights[keep]


def merge_similar_communities(matrix: sp.csr_matrix, community: np.ndarray,
                              min_cosine: float, *, behavior: BehaviorViews | None = None,
                              min_behavior_cosine: float = 0.0) -> np.ndarray:
    """Join communities whose template use points the same way (centroid cosine), and,
    given ``behavior``, whose behavior does too (``min_behavior_cosine``).

    Nearest-neighbour edges stay inside tight clusters: a campaign whose accounts
    each send their own re-worded variant of the same pipelines falls apart into
    one community per variant. Their centroids still share most units. Two
    operators running the same public pipelines share them too; their accounts'
    timing, creation, tiers, networks and clients do not agree.
    """
    n_groups = int(community.max()) + 1 if len(community) else 0
    groups = sp.csr_matrix((np.ones(len(community), dtype=np.float32),
                            (community, np.arange(len(community)))),
                           shape=(n_groups, len(community)))
    sims = _centroid_cosines(matrix, groups).tocoo()
    pairs = (sims.row < sims.col) & (sims.data >= min_cosine)
    rows, cols = sims.row[pairs], sims.col[pairs]
    if behavior is not None and behavior.shares and min_behavior_cosine > 0:
        agree = behavior.centroid_cosines(groups, rows, cols) >= min_behavior_cosine
        rows, cols = rows[agree], cols[agree]
    parent = np.arange(n_groups)

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in zip(rows.tolist(), cols.tolist(), strict=True):
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    roots = np.array([find(g) for g in range(n_groups)], dtype=np.int64)
    return roots[community]


def community_affinity(matrix: sp.csr_matrix, community: np.ndarray) -> np.ndarray:
    """Cosine between each account and the centroid of the rest of its community.

    High when the account asks for what its community asks for; an account
    tied in by one shared value or one popular template scores low.
    """
    return rest_cosines(matrix, community)
