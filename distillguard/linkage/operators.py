"""Attribution: which operator runs each account of a campaign community.

Verdicts are decided on the account graph's communities (``account_graph``), which
join two operators that run the same public pipelines: their accounts ask for the
same templates. Attribution then splits each such community by operator, on its
members only (legitimate traffic no longer competes for the links):

1. *fragments*: the members' own account graph with operator separation on
   (edges weighed by squared behavior agreement, only the relatively strong ones,
   Leiden inside each community again) and no merge: each fragment is one pool,
   pathway or batch of one operator, rarely more;
2. *greedy average linkage*: the two fragments whose accounts agree most in behavior
   (mean behavior cosine over pairs of one account of each, in every view) relative
   to how much the more coherent of the two agrees inside (``group_agreement_ratio``)
   are joined, again and again, while that ratio is at least ``min_ratio``. An
   operator's pools share its infrastructure (proxy vendor's networks, client builds,
   tiers), its model routing and its schedule, if loosely; another operator's pool
   shares none of them. Fragments of different communities may be joined (one
   operator's pathways can ask for different pipelines' templates and fall in
   different communities) unless ``within_communities``;
3. *vetoes*: a pair is not joined when, in a view of ``veto_min_ratio`` (model
   routing), the two disagree (their ratio in that view alone under its bar) while
   both show in it (an account with no model share says nothing; a group where fewer
   than ``view_min_shown_share`` of the accounts have one is not judged by it) and at
   least one agrees inside in it (``view_min_inside``). A mean over views lets agreement
   everyone shares (human hours with timing evasion, the one SDK everyone uses)
   outvote the view that tells operators apart;
4. *supports*: a pair is joined, whatever the mean, when it agrees in every view of
   ``support_min_ratio`` (creation batches and model routing) at least that view's bar,
   both groups agreeing inside in it (a veto still forbids it): one operator's
   pathways, each with its own network, client and cards, are still opened in the
   same batches and routed alike.

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

__all__ = ["AttributionParams", "ViewBar", "attribute_operators", "group_agreement_ratio",
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
    veto_min_ratio: dict[str, float] = field(default_factory=dict)
    support_min_ratio: dict[str, float] = field(default_factory=dict)
    view_min_inside: float = 0.05
    view_min_shown_share: float = 0.5
    within_communities: bool = False

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
                        graph: GraphParams, *, threads: int = 1,
                        matrix_rows: np.ndarray | None = None) -> np.ndarray:
    """An operator number per account (steps 1 to 4 of the module docstring).

    ``matrix``, ``behavior``: the accounts' template use and behavior views (weighed by
    ``params.behavior_weights``); ``community``: their community in the account graph.
    ``matrix_rows``: each account's row of ``matrix`` when it has rows of other accounts
    too (the graph's whole matrix: one community's rows are copied at a time, not all
    the accounts' at once, 16.2M exchanges' peak memory is in this step).
    """
    fragment_params = params.fragment_params(graph)
    fragment = np.zeros(len(accounts), np.int64)
    offset = 0
    for number in np.unique(community):
        rows = np.flatnonzero(community == number)
        parts = np.zeros(len(rows), np.int64)
        if len(rows) >= MIN_FRAGMENTED:
            parts = build_account_graph(
                [accounts[i] for i in rows],
                matrix[rows if matrix_rows is None else matrix_rows[rows]], {}, fragment_params,
                behavior=behavior.rows(rows), owners=[owners[i] for i in rows],
                threads=threads, merge=False).community
        fragment[rows] = parts + offset
        offset += int(parts.max()) + 1

    def bars(ratios: dict[str, float]) -> list[ViewBar]:
        return [ViewBar(behavior.views[view], bar, params.view_min_inside,
                        params.view_min_shown_share)
                for view, bar in ratios.items() if view in behavior.views]

    block = community if params.within_communities else np.zeros_like(community)
    return merge_fragments(behavior.stacked(), fragment, block, params.min_agreement_ratio,
                           vetoes=bars(params.veto_min_ratio),
                           supports=bars(params.support_min_ratio))


@dataclass(frozen=True)
class ViewBar:
    """One view with a bar of its own (module docstring, steps 3 and 4): ``matrix`` its
    rows (unit length), ``min_ratio`` the bar of the two groups' ratio in it alone,
    ``min_inside`` how much a group must agree inside in it for the view to count, and
    ``min_shown`` the share of a group's accounts that must show in it (six accounts
    with a model share out of fifty are too few to say how the fifty are routed)."""

    matrix: sp.csr_matrix
    min_ratio: float
    min_inside: float
    min_shown: float = 0.5


def _view_ratio(bar: ViewBar, sums: tuple[np.ndarray, ...], rows: np.ndarray | None, *,
                both: bool) -> np.ndarray:
    """The groups' ratio in ``bar``'s view alone (``rows`` x all groups; ``sums`` from
    ``_shown_sums``), NaN where the view says nothing of the pair: a group where fewer
    than ``bar.min_shown`` of the accounts show in it, or no group (``both``: not both)
    agreeing inside more than ``bar.min_inside``."""
    dots, squares, shown, sizes = sums
    within = _within(dots, squares, shown)
    picked = slice(None) if rows is None else rows
    inside = (np.fmin if both else np.fmax)(within[picked, None], within[None, :])
    speaks = (shown > 0) & (shown >= bar.min_shown * sizes)
    counts = (inside > bar.min_inside) & speaks[picked, None] & speaks[None, :]
    return np.where(counts, group_agreement_ratio(dots, squares, shown, rows), np.nan)


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


def _shown_sums(matrix: sp.csr_matrix, fragment: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``_fragment_sums`` with the accounts that show in ``matrix`` (a row not empty)
    counted apart: an account with no model share says nothing of its operator's
    routing. Dots, squares, accounts shown, accounts."""
    dots, squares, sizes = _fragment_sums(matrix, fragment)
    shown = np.bincount(fragment, weights=np.diff(matrix.indptr) > 0, minlength=len(squares))
    return dots, squares, shown, sizes


def _within(dots: np.ndarray, squares: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Per group, the mean cosine over pairs of its own accounts (NaN for a group of one)."""
    pairs = sizes ** 2 - sizes
    return np.where(pairs > 0, (np.diag(dots) - squares) / np.maximum(pairs, 1), np.nan)


def group_agreement_ratio(dots: np.ndarray, squares: np.ndarray, sizes: np.ndarray,
                          rows: np.ndarray | None = None) -> np.ndarray:
    """For pairs of groups (``rows`` x all groups; None: all x all), the mean cosine over
    pairs of one account of each, divided by the larger of the two groups' mean cosine
    over pairs of their own accounts (a group of one has none: the other's stands for
    both; two groups of one: 0).

    ``dots``: the dot products of the groups' row sums, ``squares``: per group the sum
    of its rows' squared lengths, ``sizes``: its accounts (``_fragment_sums``)."""
    rows = np.arange(len(sizes)) if rows is None else rows
    within = _within(dots, squares, sizes)
    with np.errstate(invalid="ignore", divide="ignore"):
        across = dots[rows] / np.outer(sizes[rows], sizes)
        reference = np.fmax(within[rows, None], within[None, :])
        ratio = np.where(reference > 0, across / reference, 0.0)
    return np.nan_to_num(ratio, nan=0.0)


def merge_fragments(stacked: sp.csr_matrix, fragment: np.ndarray, block: np.ndarray,
                    min_ratio: float, vetoes: Sequence[ViewBar] = (),
                    supports: Sequence[ViewBar] = ()) -> np.ndarray:
    """Join fragments greedily (module docstring, steps 2 to 4); return a group number
    per account (the lowest fragment number of its group).

    ``stacked``: each account's behavior views side by side, scaled so that the dot
    product of two rows is their behavior cosine (``BehaviorViews.stacked``);
    ``fragment``: a fragment number per account; ``block``: a number per account
    (its community): fragments of different blocks are never joined.
    """
    if not len(fragment):
        return fragment.copy()
    bars = [*vetoes, *supports]
    sums = [_fragment_sums(stacked, fragment)] + [_shown_sums(bar.matrix, fragment)
                                                   for bar in bars]
    dots, squares, sizes = sums[0]
    k = len(sizes)
    fragment_block = np.zeros(k, np.int64)
    fragment_block[fragment] = block
    allowed = fragment_block[:, None] == fragment_block[None, :]
    np.fill_diagonal(allowed, False)

    def ratios(rows: np.ndarray | None = None) -> np.ndarray:
        ratio = group_agreement_ratio(dots, squares, sizes, rows)
        if supports:
            agree = np.logical_and.reduce([
                _view_ratio(bar, view_sums, rows, both=True) >= bar.min_ratio
                for bar, view_sums in zip(supports, sums[1 + len(vetoes):], strict=True)])
            ratio = np.where(agree, np.maximum(ratio, min_ratio), ratio)
        for bar, view_sums in zip(vetoes, sums[1:1 + len(vetoes)], strict=True):
            ratio = np.where(_view_ratio(bar, view_sums, rows, both=False) < bar.min_ratio,
                             -1.0, ratio)
        return ratio

    ratio = np.where(allowed, ratios(), -np.inf)
    root = np.arange(k)
    while True:
        a, b = divmod(int(np.argmax(ratio)), k)
        if not ratio[a, b] >= min_ratio:
            break
        a, b = min(a, b), max(a, b)
        for s_dots, *per_group in sums:
            s_dots[a, :] += s_dots[b, :]
            s_dots[:, a] += s_dots[:, b]
            for values in per_group:
                values[a] += values[b]
        root[root == b] = a
        allowed[a] &= allowed[b]
        allowed[b] = False
        allowed[:, b] = False
        allowed[:, a] = allowed[a]
        ratio[b, :] = ratio[:, b] = -np.inf
        ratio[a, :] = ratio[:, a] = np.where(allowed[a], ratios(np.array([a]))[0], -np.inf)
    return root[fragment]
