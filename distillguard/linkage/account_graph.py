"""The account graph: accounts that ask for the same things *and* behave alike, and its
communities.

Content says what is harvested; behavior says who harvests it. Two operators
running the same public pipelines send the same templates; only their behavior
(``behavior_views``) tells their accounts apart, and pair by pair it does so
weakly (a mean behavior cosine of 0.2-0.3 inside an operator against 0.05-0.1
across, train split). So:

1. each account's candidate neighbours are its nearest by template use *and* its
   nearest by behavior; an edge weighs content cosine x (``content_edge_floor`` +
   the rest x behavior cosine) ** ``behavior_exponent``: squared, a pair twice as
   alike in behavior weighs four times as much;
2. an account keeps its ``content_neighbors`` heaviest edges, and of those only the
   ones of at least ``edge_min_relative_weight`` of the strongest edge of either
   end: an operator of a dozen accounts would otherwise be tied to strangers to
   make up the count;
3. Leiden (modularity) finds communities, and again inside each one
   ``split_depth`` times: modularity joins groups much smaller than the whole
   graph as soon as any edge links them (its resolution limit), inside a
   community it no longer does;
4. communities whose template use points the same way are joined when their
   accounts agree in the operator views across the two nearly as much as inside each
   (``merge_min_behavior_ratio``; and at least ``merge_min_behavior_cosine`` of
   centroid agreement): one operator's pools, cut apart by step 3, share its
   schedule and model routing; two operators do not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from distillguard.linkage.behavior_views import (
    BEHAVIOR_VIEWS,
    LINKAGE_ONLY_VIEWS,
    OPERATOR_VIEWS,
    BehaviorViews,
    owner_codes,
    rest_cosines,
)
from distillguard.linkage.communities import leiden_communities
from distillguard.linkage.content_similarity import (
    content_neighbors,
    neighbors_and_pair_cosines,
    normalize_rows,
)
from distillguard.linkage.shared_values import shared_value_edges

__all__ = ["AccountGraph", "GraphParams", "build_account_graph"]

# With behavior views, each account's neighbours are drawn from this many times
# ``content_neighbors`` candidates by template use and as many by behavior, and the
# heaviest after weighing are kept.
BEHAVIOR_CANDIDATES = 3
# Views left out of the search for behavior candidates (not of the weighing): the
# hours view is dense (a 24/7 pipeline is active in most hours of the window),
# and its product over every pair of accounts grows with their square.
CANDIDATE_SEARCH_LEAVES_OUT = ("days",)


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
    model_share_step: float = 0.2
    model_share_min_requests: int = 10
    content_edge_floor: float = 1.0
    merge_min_behavior_cosine: float = 0.0
    behavior_exponent: float = 1.0
    behavior_candidates: bool = False
    edge_min_relative_weight: float = 0.0
    split_depth: int = 0
    merge_min_behavior_ratio: float = 0.0
    infra_edge_weight_relative: bool = False


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
                        threads: int = 1, merge: bool = True) -> AccountGraph:
    """Link candidate accounts and find communities.

    ``matrix`` is the accounts' template use (``content_similarity.account_unit_matrix``,
    a row per account; None: no shared units); ``shared_values`` maps an
    infrastructure field name to one value per account; ``behavior`` holds each
    account's stacked behavior views (``behavior_views.behavior_views``); ``owners``
    (one per account) makes each account's behavior affinity the one with its
    community's other owners.
    ``threads``: how many blocks of the nearest-neighbour search run at once.
    ``merge``: False leaves out step 4 (the communities Leiden finds are kept).
    """
    n = len(accounts)
    sources, targets, weights, kinds = [], [], [], []
    if matrix is not None and not matrix.nnz:
        matrix = None
    if matrix is not None:
        s, t, w = _content_edges(matrix, params, behavior, threads)
        sources.append(s)
        targets.append(t)
        weights.append(w)
        kinds += ["content"] * len(s)
    # Content edges weighed by squared behavior are far lighter than a content cosine;
    # with infra_edge_weight_relative an infrastructure edge weighs infra_edge_weight
    # times the median content edge, so that a shared card adds to the links of an
    # operator's accounts instead of deciding them.
    infra_weight = params.infra_edge_weight * (
        float(np.median(weights[0])) if params.infra_edge_weight_relative and weights
        and len(weights[0]) else 1.0)
    for name, values in shared_values.items():
        max_group = params.shared_value_max_group.get(name, 0)
        if max_group < 2:
            continue
        s, t = shared_value_edges(values, max_group=max_group)
        sources.append(s)
        targets.append(t)
        weights.append(np.full(len(s), infra_weight, dtype=np.float32))
        kinds += [name] * len(s)
    src = np.concatenate(sources) if sources else np.zeros(0, dtype=np.int64)
    dst = np.concatenate(targets) if targets else np.zeros(0, dtype=np.int64)
    w = np.concatenate(weights) if weights else np.zeros(0, dtype=np.float32)
    community = leiden_communities(n, src, dst, w, resolution=params.leiden_resolution,
                                   seed=seed)
    for _ in range(params.split_depth):
        community = split_communities(community, src, dst, w,
                                      resolution=params.leiden_resolution, seed=seed)
    if matrix is not None and merge:
        community = merge_similar_communities(
            matrix, community, params.merge_min_cosine, behavior=behavior,
            min_behavior_cosine=params.merge_min_behavior_cosine,
            min_behavior_ratio=params.merge_min_behavior_ratio,
            owners=None if owners is None else owner_codes(owners))
    affinity = (community_affinity(matrix, community) if matrix is not None
                else np.zeros(n, dtype=np.float32))
    behavior_affinity, parts = (behavior.affinity(community, owners) if behavior is not None
                                else (None, {}))
    return AccountGraph(accounts, src, dst, w, kinds, community, affinity, behavior_affinity,
                        parts)


def _content_edges(matrix: sp.csr_matrix, params: GraphParams, behavior: BehaviorViews | None,
                   threads: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Steps 1 and 2 of the module docstring: the content edges, weighed by behavior."""
    k = params.content_neighbors
    if behavior is None:
        return content_neighbors(matrix, k=k, min_cosine=params.content_min_cosine,
                                 threads=threads)
    n = matrix.shape[0]
    bs = bt = np.zeros(0, dtype=np.int64)
    if params.behavior_candidates:
        bs, bt, _ = content_neighbors(behavior.stacked(CANDIDATE_SEARCH_LEAVES_OUT),
                                      k=k * BEHAVIOR_CANDIDATES, min_cosine=0.0, threads=threads)
    s, t, content, behavior_pairs_content = neighbors_and_pair_cosines(
        matrix, bs, bt, k=k * BEHAVIOR_CANDIDATES, min_cosine=params.content_min_cosine,
        threads=threads)
    if len(bs):
        keys = np.concatenate([s, bs]).astype(np.int64) * n + np.concatenate([t, bt])
        pairs, first = np.unique(keys, return_index=True)
        content = np.concatenate([content, behavior_pairs_content])[first]
        s, t = pairs // n, pairs % n
        keep = content >= params.content_min_cosine
        s, t, content = s[keep], t[keep], content[keep]
    floor = params.content_edge_floor
    agree = np.maximum(behavior.pair_cosines(s, t), 0.0)
    w = (content * (floor + (1.0 - floor) * agree) ** params.behavior_exponent) \
        .astype(np.float32)
    s, t, w = _strongest_per_node(s, t, w, k)
    return _relatively_strong(s, t, w, n, params.edge_min_relative_weight)


def _relatively_strong(sources: np.ndarray, targets: np.ndarray, weights: np.ndarray, n: int,
                       min_share: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The edges weighing at least ``min_share`` of the strongest edge of either end."""
    if not len(sources) or min_share <= 0:
        return sources, targets, weights
    best = np.zeros(n, np.float32)
    np.maximum.at(best, sources, weights)
    np.maximum.at(best, targets, weights)
    keep = weights >= min_share * np.minimum(best[sources], best[targets])
    return sources[keep], targets[keep], weights[keep]


def split_communities(community: np.ndarray, sources: np.ndarray, targets: np.ndarray,
                      weights: np.ndarray, *, resolution: float, seed: int = 0) -> np.ndarray:
    """Leiden again on each community's own edges: a community Leiden cuts in parts
    becomes those parts (numbered anew, in order of community and part)."""
    n = len(community)
    inside = community[sources] == community[targets]
    src, dst, w = sources[inside], targets[inside], weights[inside]
    order = np.argsort(community[src], kind="stable")
    src, dst, w = src[order], dst[order], w[order]
    edge_groups = community[src]
    members = np.argsort(community, kind="stable")
    bounds = np.searchsorted(community[members], np.arange(int(community.max()) + 2))
    position = np.zeros(n, np.int64)
    part = np.zeros(n, np.int64)
    for group in range(int(community.max()) + 1):
        nodes = members[bounds[group]:bounds[group + 1]]
        if len(nodes) < 2:
            continue
        position[nodes] = np.arange(len(nodes))
        lo, hi = np.searchsorted(edge_groups, [group, group + 1])
        part[nodes] = leiden_communities(len(nodes), position[src[lo:hi]], position[dst[lo:hi]],
                                         w[lo:hi], resolution=resolution, seed=seed)
    pairs = community.astype(np.int64) * (int(part.max()) + 1) + part
    return np.unique(pairs, return_inverse=True)[1].ravel()


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
                              min_behavior_cosine: float = 0.0,
                              min_behavior_ratio: float = 0.0,
                              owners: np.ndarray | None = None) -> np.ndarray:
    """Join communities whose template use points the same way (centroid cosine), and,
    given ``behavior``, whose behavior does too: the cosine of their behavior centroids
    at least ``min_behavior_cosine``, and their accounts' mean cosine in the operator
    views (``OPERATOR_VIEWS`` and ``LINKAGE_ONLY_VIEWS``) across the two at least
    ``min_behavior_ratio`` of the mean inside the more coherent one (``owners``: a
    code per account; pairs of one owner do not count inside a group).

    Nearest-neighbour edges stay inside tight clusters: a campaign whose accounts
    each send their own re-worded variant of the same pipelines falls apart into
    one community per variant. Their centroids still share most units. Two
    operators running the same public pipelines share them too; their accounts'
    timing, creation, model routing, tiers, networks and clients do not agree.
    Centroids of big groups agree whenever their populations look alike on the
    whole (two flat 24/7 schedules); accounts of two operators agree pair by pair
    much less than accounts of one, whatever the size of the groups. Only the views
    that say who runs an account count here: an operator's access pathways each
    have their own network, tiers, clients and cards, and agree with each other
    in its schedule, creation batches and model moves.
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
    if behavior is not None and behavior.shares and min_behavior_ratio > 0:
        merge_views = OPERATOR_VIEWS + LINKAGE_ONLY_VIEWS
        across, within = behavior.group_agreement(community, rows, cols, leave_out=[
            view for view in BEHAVIOR_VIEWS if view not in merge_views], owners=owners)
        # a group of one has no inside: the other's stands for both (none: no bar)
        reference = np.fmax(within[rows], within[cols])
        agree = across >= min_behavior_ratio * np.nan_to_num(reference, nan=0.0)
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
