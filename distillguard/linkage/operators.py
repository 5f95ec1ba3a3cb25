"""Attribution: which operator runs each account of a campaign community.

Verdicts are decided on the account graph's communities (``account_graph``), which
join two operators that run the same public pipelines: their accounts ask for the
same templates. Attribution then splits each such community by operator, on its
members only (legitimate traffic no longer competes for the links):

1. *fragments*: the members' own account graph with operator separation on
   (edges weighed by squared behavior agreement, only the relatively strong ones,
   Leiden inside each community again) and no merge: each fragment is one pool,
   pathway or batch of one operator, rarely more;
2. *greedy average linkage*: the two fragments of one community whose accounts agree
   most in behavior (mean behavior cosine over pairs of one account of each, in every
   view) relative to how much the more coherent of the two agrees inside
   (``group_agreement_ratio``) are joined, again and again, while that ratio is at
   least ``min_ratio``. An operator's pools share its infrastructure (proxy vendor's
   networks, client builds, tiers), its model routing and its schedule, if loosely;
   another operator's pool shares none of them.

Joining the best pair first and measuring the joined fragment as a whole is what
keeps a loose operator (a proxy network's many pools) together without letting a
tight one (a lab's pathway) slip into it: with one bar over all pairs at once, any
chain of pairs above it joined everything along it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import scipy.sparse as sp

from distillguard.linkage.account_graph import GraphParams, build_account_graph
from distillguard.linkage.behavior_views import BehaviorViews

__all__ = ["AttributionParams", "attribute_operators", "group_agreement_ratio",
           "merge_fragments"]

# A community this small is one fragment: Leiden has nothing to cut.
MIN_FRAGMENTED = 4


@dataclass(frozen=True)
class AttributionParams:
    """Policy section ``attribution``: the bar of step 2 (0: no attribution, a campaign
    is a whole community) and the keys of ``graph`` that differ for the fragments."""

    min_agreement_ratio: float = 0.0
    behavior_weights: dict[str, float] = field(default_factory=dict)
    content_edge_floor: float = 0.0
    behavior_exponent: float = 2.0
    behavior_candidates: bool = True
    edge_min_relative_weight: float = 0.35
    split_depth: int = 1

    def fragment_params(self, graph: GraphParams) -> GraphParams:
        """``graph`` with this section's keys, and no infrastructure edges (payment and
        IP count in the behavior views already)."""
        return replace(graph, behavior_weights=dict(self.behavior_weights),
                       content_edge_floor=self.content_edge_floor,
                       behavior_exponent=self.behavior_exponent,
                       behavior_candidates=self.behavior_candidates,
                       edge_min_relative_weight=self.edge_min_relative_weight,
                       split_depth=self.split_depth, shared_value_max_group={})


def attribute_operators(accounts: Sequence[str], matrix: sp.csr_matrix,
                        behavior: BehaviorViews, community: np.ndarray,
                        owners: Sequence[object], params: AttributionParams,
                        graph: GraphParams, *, threads: int = 1) -> np.ndarray:
    """An operator number per account (steps 1 and 2 of the module docstring), never
    shared by accounts of two communities.

    ``matrix``, ``behavior``: the accounts' template use and behavior views (weighed by
    ``params.behavior_weights``); ``community``: their community in the account graph.
    """
    fragment_params = params.fragment_params(graph)
    fragment = np.zeros(len(accounts), np.int64)
    offset = 0
    for number in np.unique(community):
        rows = np.flatnonzero(community == number)
        parts = np.zeros(len(rows), np.int64)
        if len(rows) >= MIN_FRAGMENTED:
            parts = build_account_graph(
                [accounts[i] for i in rows], matrix[rows], {}, fragment_params,
                behavior=behavior.rows(rows), owners=[owners[i] for i in rows],
                threads=threads, merge=False).community
        fragment[rows] = parts + offset
        offset += int(parts.max()) + 1
    return merge_fragments(behavior.stacked(), fragment, community,
                           params.min_agreement_ratio)


def _fragment_sums(stacked: sp.csr_matrix, fragment: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per pair of fragments the dot product of their row sums (dense k x k), per fragment
    the sum of its rows' squared lengths, and its size."""
    n = len(fragment)
    k = int(fragment.max()) + 1
    groups = sp.csr_matrix((np.ones(n), (fragment, np.arange(n))), shape=(k, n))
    sums = (groups @ stacked.astype(np.float64)).tocsr()
    dots = (sums @ sums.T).toarray()
    squares = np.bincount(fragment, weights=np.asarray(
        stacked.multiply(stacked).sum(axis=1)).ravel(), minlength=k)
    return dots, squares, np.bincount(fragment, minlength=k).astype(np.float64)


def group_agreement_ratio(dots: np.ndarray, squares: np.ndarray, sizes: np.ndarray,
                          rows: np.ndarray | None = None) -> np.ndarray:
    """For pairs of groups (``rows`` x all groups; None: all x all), the mean cosine over
    pairs of one account of each, divided by the larger of the two groups' mean cosine
    over pairs of their own accounts (a group of one has none: the other's stands for
    both; two groups of one: 0).

    ``dots``: the dot products of the groups' row sums, ``squares``: per group the sum
    of its rows' squared lengths, ``sizes``: its accounts (``_fragment_sums``)."""
    rows = np.arange(len(sizes)) if rows is None else rows
    pairs = sizes ** 2 - sizes
    with np.errstate(invalid="ignore", divide="ignore"):
        within = np.where(pairs > 0, (np.diag(dots) - squares) / np.maximum(pairs, 1), np.nan)
        across = dots[rows] / np.outer(sizes[rows], sizes)
        reference = np.fmax(within[rows, None], within[None, :])
        ratio = np.where(reference > 0, across / reference, 0.0)
    return np.nan_to_num(ratio, nan=0.0)


def merge_fragments(stacked: sp.csr_matrix, fragment: np.ndarray, block: np.ndarray,
                    min_ratio: float) -> np.ndarray:
    """Join fragments greedily (module docstring, step 2); return a group number per
    account (the lowest fragment number of its group).

    ``stacked``: each account's behavior views side by side, scaled so that the dot
    product of two rows is their behavior cosine (``BehaviorViews.stacked``);
    ``fragment``: a fragment number per account; ``block``: a number per account
    (its community): fragments of different blocks are never joined.
    """
    if not len(fragment):
        return fragment.copy()
    dots, squares, sizes = _fragment_sums(stacked, fragment)
    k = len(sizes)
    fragment_block = np.zeros(k, np.int64)
    fragment_block[fragment] = block
    allowed = fragment_block[:, None] == fragment_block[None, :]
    np.fill_diagonal(allowed, False)
    ratio = np.where(allowed, group_agreement_ratio(dots, squares, sizes), -np.inf)
    root = np.arange(k)
    while True:
        a, b = divmod(int(np.argmax(ratio)), k)
        if not ratio[a, b] >= min_ratio:
            break
        a, b = min(a, b), max(a, b)
        dots[a, :] += dots[b, :]
        dots[:, a] += dots[:, b]
        squares[a] += squares[b]
        sizes[a] += sizes[b]
        root[root == b] = a
        allowed[a] &= allowed[b]
        allowed[b] = False
        allowed[:, b] = False
        allowed[:, a] = allowed[a]
        ratio[b, :] = ratio[:, b] = -np.inf
        ratio[a, :] = ratio[:, a] = np.where(
            allowed[a], group_agreement_ratio(dots, squares, sizes, np.array([a]))[0], -np.inf)
    return root[fragment]
