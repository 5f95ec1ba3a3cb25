"""What ties accounts to one operator beyond the text they send: behavior views.

Two operators may run the same public pipelines: their accounts then ask for
the same templates, and content alone cannot tell them apart. What differs is
how each operator runs its accounts. Each *view* is a sparse vector per
account, L2-normalized, so the cosine of two accounts in a view says how much
they agree in it:

- ``waves``: requests per ``wave_seconds`` bin (accounts fired by one
  orchestrator send within the same seconds or minutes);
- ``days``: requests per hour of the window (co-activity over days: one
  operator's jobs run on its own days and hours; two flat 24/7 pipelines only
  agree where their accounts' lives overlap);
- ``creation``: the hour its account was opened, on two grids of
  ``creation_batch_hours`` offset by half a bin (accounts opened in one batch
  share a bin on at least one grid);
- ``models``: per model released while the log runs, the share of the
  account's requests since that release sent to it, on two grids of
  ``model_share_step`` offset by half a step (an operator routes its whole fleet
  to a new model at once and in one proportion: one sends nine in ten requests to
  it, another half; accounts with fewer than ``model_share_min_requests`` requests
  since a release, or none to the model, have no share for it: staying is
  everyone's default);
- one-hot views of the account's tier, main network (ASN), main client
  fingerprint, payment method and main IP.

Two accounts' behavior cosine is the weighted mean of their per-view cosines
(``graph.behavior_weights``; a view an account lacks counts as disagreement),
so each view's part in it can be shown in an account's reasons.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from distillguard.compiled import compiled
from distillguard.linkage.content_similarity import normalize_rows

__all__ = ["BEHAVIOR_VIEWS", "CATEGORICAL_COLUMNS", "LINKAGE_ONLY_VIEWS", "OPERATOR_VIEWS",
           "AccountActivity", "BehaviorViews", "behavior_views", "normalize_rows", "owner_codes",
           "rest_cosines", "row_cosines"]

# Views in the order they are stacked; ``graph.behavior_weights`` weighs each.
BEHAVIOR_VIEWS = ("waves", "days", "creation", "models", "tier", "network", "client", "payment",
                  "ip")
# Views that say *who* runs an account (when it acts, when it was opened, what
# pays for it, where it connects from), not what kind of customer it is: a
# tier, a network or a popular client is shared by every customer of its kind
# (evaluation teams of unrelated organizations share a research tier and an
# SDK), so agreement in those alone never says that one operator runs accounts
# of different owners.
OPERATOR_VIEWS = ("waves", "days", "creation", "payment", "ip")
# Views that tell operators apart but are no evidence that one operator runs an
# account: many customers route about half their requests to a new model, as
# one big operator does. They weigh edges and the operator test of merges
# (``account_graph.merge_similar_communities``), not an account's affinity with
# its campaign (``BehaviorViews.affinity``: the other views' weights are scaled
# up to make up for them).
LINKAGE_ONLY_VIEWS = ("models",)
_CATEGORICAL = {"tier": "account_tier", "network": "main_asn", "client": "main_client_fingerprint",
                "payment": "payment_fingerprint", "ip": "main_ip"}
CATEGORICAL_COLUMNS = tuple(_CATEGORICAL.values())


@dataclass
class AccountActivity:
    """Sampled requests per account and time: ``(account_position, second, count)``
    (``second``: whole seconds since the epoch), each account's creation time in
    seconds since the epoch (NaN when unknown), and per account and released model
    ``(model_account_pos, model, since_release, to_model)``: its sampled requests since
    the model's release and how many of them went to it."""

    account_pos: np.ndarray
    seconds: np.ndarray
    counts: np.ndarray
    created: np.ndarray
    model_account_pos: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    model: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    since_release: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    to_model: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))


def _binned(rows: np.ndarray, bins: np.ndarray, values: np.ndarray, n: int) -> sp.csr_matrix:
    _, cols = np.unique(bins, return_inverse=True)
    width = int(cols.max()) + 1 if len(cols) else 0
    matrix = sp.csr_matrix((values.astype(np.float32), (rows, cols.ravel())), shape=(n, width))
    matrix.sum_duplicates()
    return normalize_rows(matrix)


def _one_hot(values: Sequence[object | None]) -> sp.csr_matrix:
    n = len(values)
    known = [i for i, v in enumerate(values) if v is not None and v != ""]
    codes: dict[object, int] = {}
    cols = np.array([codes.setdefault(values[i], len(codes)) for i in known], dtype=np.int64)
    return sp.csr_matrix((np.ones(len(known), np.float32), (np.array(known, np.int64), cols)),
                         shape=(n, len(codes)))


@dataclass
class BehaviorViews:
    """Each view's matrix (accounts x bins, unit-length rows) and its share of the weight."""

    views: dict[str, sp.csr_matrix]
    shares: dict[str, float]

    def pair_cosines(self, sources: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """Weighted mean over views of the cosine of accounts ``sources[i]`` and
        ``targets[i]``."""
        out = np.zeros(len(sources), np.float32)
        for view, share in self.shares.items():
            out += share * row_cosines(self.views[view], sources, targets)
        return out

    def affinity(self, community: np.ndarray, owners: Sequence[object] | None = None,
                 ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Per account, the weighted mean over views (but ``LINKAGE_ONLY_VIEWS``) of its
        cosine with the rest of its community (the centroid of the others' rows), and each
        view's weighted part.

        With ``owners`` (one per account), the rest is the accounts of the community's
        other owners: accounts of one organization or one card agree on their network,
        payment and creation whoever they are, so only agreement across owners says
        that one operator runs them."""
        own = None
        if owners is not None:
            own = np.unique(np.stack([community, owner_codes(owners)]), axis=1,
                            return_inverse=True)[1].ravel()
        kept = {view: share for view, share in self.shares.items()
                if view not in LINKAGE_ONLY_VIEWS}
        scale = 1.0 / sum(kept.values()) if kept else 0.0
        parts = {view: share * scale * rest_cosines(self.views[view], community, own)
                 for view, share in kept.items()}
        total = np.zeros(len(community), np.float32)
        for part in parts.values():
            total += part
        return total, parts

    def rows(self, rows: np.ndarray) -> BehaviorViews:
        """The views of the accounts ``rows`` only."""
        return BehaviorViews({view: matrix[rows] for view, matrix in self.views.items()},
                             self.shares)

    def stacked(self, leave_out: Sequence[str] = ()) -> sp.csr_matrix:
        """The views side by side, each scaled by the square root of its share: the dot
        product of two rows is the two accounts' behavior cosine (over the views kept)."""
        kept = [np.float32(np.sqrt(share)) * self.views[view]
                for view, share in self.shares.items() if view not in leave_out]
        return sp.hstack(kept, format="csr", dtype=np.float32)

    def group_agreement(self, community: np.ndarray, a: np.ndarray, b: np.ndarray,
                        leave_out: Sequence[str] = (), owners: np.ndarray | None = None
                        ) -> tuple[np.ndarray, np.ndarray]:
        """For groups ``a[i]`` and ``b[i]`` (``community``: a group number per account), the
        mean behavior cosine over pairs of one account of each, and per group the mean over
        pairs of its own accounts (NaN for a group of one).

        With ``owners`` (a code per account), pairs of one owner are left out of the mean
        inside a group: accounts on one card or of one organization agree on their payment,
        network and creation batch whoever runs them (NaN for a group of one owner).

        From sums alone, as ``rest_cosines``: across, ``S_a . S_b / (n_a n_b)`` (``S``: a
        group's sum of its accounts' stacked rows); inside, ``(|S|^2 - sum_o |O|^2) /
        (n^2 - sum_o n_o^2)`` (``O``: the sum of one owner's accounts in the group).
        """
        stacked = self.stacked(leave_out)
        n = len(community)
        groups = sp.csr_matrix((np.ones(n, np.float32), (community, np.arange(n))),
                               shape=(int(community.max()) + 1, n))
        sizes = np.asarray(groups.sum(axis=1)).ravel()
        across = row_cosines((groups @ stacked).tocsr(), a, b) / np.maximum(sizes[a] * sizes[b], 1)
        units = (np.arange(n) if owners is None else
                 np.unique(np.stack([community, owners]), axis=1, return_inverse=True)[1].ravel())
        # sum over a group's rows of x . S is |S|^2; of x . O, the sum of its owners' |O|^2
        total = np.bincount(community, weights=_dots_with_group_sums(stacked, community)[0],
                            minlength=len(sizes))
        own = np.bincount(community, weights=_dots_with_group_sums(stacked, units)[0],
                          minlength=len(sizes))
        own_pairs = np.bincount(community, weights=np.bincount(units)[units].astype(float),
                                minlength=len(sizes))
        pairs = sizes ** 2 - own_pairs
        within = np.where(pairs > 0, (total - own) / np.maximum(pairs, 1), np.nan)
        return across.astype(np.float64), within

    def centroid_cosines(self, groups: sp.csr_matrix, a: np.ndarray,
                         b: np.ndarray) -> np.ndarray:
        """Weighted mean over views of the cosine of the centroids of groups ``a[i]`` and
        ``b[i]`` (``groups``: groups x accounts membership)."""
        out = np.zeros(len(a), np.float32)
        for view, share in self.shares.items():
            centroids = normalize_rows((groups @ self.views[view]).tocsr())
            out += share * row_cosines(centroids, a, b)
        return out


def owner_codes(owners: Sequence[object]) -> np.ndarray:
    """A number per distinct owner, one per account."""
    return np.unique(np.array([str(o) for o in owners], dtype=object),
                     return_inverse=True)[1].ravel()


def rest_cosines(matrix: sp.csr_matrix, community: np.ndarray,
                 own: np.ndarray | None = None) -> np.ndarray:
    """Cosine between each row and the sum of the other rows of its community.

    With ``own`` (a label per row, rows of one label always in one community), the
    rows of the row's own label are left out of the rest as well: an account's
    agreement with the accounts of *other* owners of its community.

    From each community's sum ``S`` and each label's sum ``O`` alone
    (``x . (S - O) = x . S - x . O``, ``|S - O|^2 = |S|^2 - 2 S . O + |O|^2``;
    without labels ``O`` is the row itself): the rest of a big community is never
    built row by row.
    """
    n = matrix.shape[0]
    if n == 0 or matrix.nnz == 0:
        return np.zeros(n, np.float32)
    x_sq = _per_row_sums(matrix, lambda data, rows, cols: data.astype(np.float64) ** 2)
    x_dot_s, s_sq = _dots_with_group_sums(matrix, community)
    if own is None:
        x_dot_o, o_sq, s_dot_o = x_sq, x_sq, x_dot_s
    else:
        x_dot_o, o_sq = _dots_with_group_sums(matrix, own)
        s_dot_o = np.bincount(own, weights=x_dot_s)[own]
    dots = x_dot_s - x_dot_o
    rest_sq = np.maximum(s_sq - 2 * s_dot_o + o_sq, 0.0)
    denominator = np.sqrt(rest_sq * x_sq)
    return np.where(denominator > 1e-12, dots / np.maximum(denominator, 1e-12), 0.0) \
        .astype(np.float32)


# Stored values of a matrix worked on at once by ``rest_cosines``: each value's
# temporaries (its row, its group's sum looked up, products: about 60 bytes) for the
# whole matrix were the 16.2M scan's peak (+460 MB over the content matrix's values).
REST_COSINE_VALUES = 2_000_000


def _per_row_sums(matrix: sp.csr_matrix,
                  value: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]) -> np.ndarray:
    """Per row, the sum of ``value(data, rows, cols)`` over its stored values, taken over
    whole rows of about ``REST_COSINE_VALUES`` values at a time: each row's values are
    summed in the order they are stored, as one ``bincount`` over the matrix would."""
    n, indptr = matrix.shape[0], matrix.indptr
    out = np.zeros(n, np.float64)
    start = 0
    while start < n:
        stop = int(np.searchsorted(indptr, indptr[start] + REST_COSINE_VALUES, side="right")) - 1
        stop = min(n, max(stop, start + 1))
        lo, hi = indptr[start], indptr[stop]
        rows = np.repeat(np.arange(start, stop), np.diff(indptr[start:stop + 1]))
        out[start:stop] = np.bincount(rows - start, minlength=stop - start, weights=value(
            matrix.data[lo:hi], rows, matrix.indices[lo:hi]))
        start = stop
    return out


def _dots_with_group_sums(matrix: sp.csr_matrix, group: np.ndarray
                          ) -> tuple[np.ndarray, np.ndarray]:
    """Per row, its dot product with the sum of its group's rows, and that sum's squared
    length."""
    n = matrix.shape[0]
    groups = sp.csr_matrix((np.ones(n, dtype=np.float64), (group, np.arange(n))),
                           shape=(int(group.max()) + 1, n))
    sums = (groups @ matrix.astype(np.float64)).tocsr()
    # Sorted column indices make the lookup below a binary search per value; a sparse
    # product's are unsorted, and scipy then scans the whole row (a big community's row
    # holds every minute any member was active: minutes per lookup at 2.6M exchanges).
    sums.sum_duplicates()
    x_dot_sum = _per_row_sums(matrix, lambda data, rows, cols: data * np.asarray(
        sums[group[rows], cols]).ravel())
    sum_sq = np.asarray(sums.multiply(sums).sum(axis=1)).ravel()[group]
    return x_dot_sum, sum_sq


def _offset_grids(rows: np.ndarray, groups: np.ndarray, values: np.ndarray, step: float,
                  n: int) -> sp.csr_matrix:
    """Unit-length rows with a one for each ``(groups[i], values[i])`` of row ``rows[i]``,
    ``values`` binned on two grids of ``step`` offset by half a step: two values of one
    group closer than half a step share a bin on at least one grid, two values a step
    apart none."""
    grid = np.floor(values / step).astype(np.int64)
    shifted = np.floor(values / step + 0.5).astype(np.int64)
    bins = np.stack([grid * 2, shifted * 2 + 1], axis=1).ravel()
    keys = np.stack([np.repeat(groups, 2), bins], axis=1)
    return _binned(np.repeat(rows, 2), _pair_codes(keys), np.ones(2 * len(rows)), n)


def _pair_codes(keys: np.ndarray) -> np.ndarray:
    """One integer per distinct row of ``keys`` (pairs of integers)."""
    if not len(keys):
        return np.zeros(0, np.int64)
    return np.unique(keys, axis=0, return_inverse=True)[1].ravel()


def behavior_views(activity: AccountActivity, categorical: Mapping[str, Sequence[object | None]],
                   weights: Mapping[str, float], *, wave_seconds: int,
                   creation_batch_hours: float, model_share_step: float = 0.2,
                   model_share_min_requests: int = 10) -> BehaviorViews:
    """The behavior views of ``len(activity.created)`` accounts (rows), with the views of
    positive weight only.

    ``categorical`` maps ``CATEGORICAL_COLUMNS`` to one value per account.
    ``model_share_step``, ``model_share_min_requests``: the ``models`` view (module
    docstring).
    """
    n = len(activity.created)
    pos, seconds, counts = activity.account_pos, activity.seconds, activity.counts
    views: dict[str, sp.csr_matrix] = {
        "waves": _binned(pos, seconds // wave_seconds, counts, n),
        "days": _binned(pos, seconds // 3600, counts, n)}
    created = activity.created
    known = np.flatnonzero(~np.isnan(created))
    views["creation"] = _offset_grids(known, np.zeros(len(known), np.int64), created[known],
                                      creation_batch_hours * 3600.0, n)
    # Not moving to a new model is everyone's default, not a decision that marks an
    # operator: only accounts that sent it something have a share of it.
    enough = (activity.since_release >= model_share_min_requests) & (activity.to_model > 0)
    views["models"] = _offset_grids(
        activity.model_account_pos[enough], activity.model[enough],
        activity.to_model[enough] / activity.since_release[enough], model_share_step, n)
    for view, column in _CATEGORICAL.items():
        views[view] = _one_hot(categorical[column])
    used = {v: float(weights[v]) for v in BEHAVIOR_VIEWS if weights.get(v, 0.0) > 0}
    total = sum(used.values())
    return BehaviorViews({v: views[v] for v in used}, {v: w / total for v, w in used.items()})


def row_cosines(matrix: sp.csr_matrix, sources: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Dot product of rows ``sources[i]`` and ``targets[i]`` (their cosine: rows are unit
    length), summed in float64 and rounded to float32.

    Each pair's two rows are merged in place by a compiled loop. Slicing the rows out
    and multiplying them (scipy) held four arrays of the slices' values at a time, 140
    MB in slices of 4M values on a scale-0.1 graph (whole, gigabytes: 4.5 GB at 15.6M
    exchanges); the loop holds nothing but its result. Scipy's float32 sum rounded
    about one pair in five one bit away from this one.
    """
    if not len(sources) or matrix.shape[1] == 0:
        return np.zeros(len(sources), np.float32)
    direction = int(compiled(_column_order)(matrix.indptr, matrix.indices))
    if direction == 0:
        matrix = matrix.copy()
        matrix.sum_duplicates()
        direction = 1
    dots = np.zeros(len(sources), np.float64)
    compiled(_sorted_row_dots)(matrix.indptr, matrix.indices, matrix.data,
                               np.asarray(sources), np.asarray(targets), direction < 0, dots)
    return dots.astype(np.float32)


def _column_order(indptr: np.ndarray, indices: np.ndarray) -> int:
    """1 when every row's column indices ascend, -1 when every row's descend (the rows of
    ``normalize_rows``, a sparse product, come out reversed), else 0: without copying."""
    ascending = descending = True
    for row in range(len(indptr) - 1):
        for entry in range(indptr[row] + 1, indptr[row + 1]):
            ascending &= indices[entry - 1] < indices[entry]
            descending &= indices[entry - 1] > indices[entry]
        if not (ascending or descending):
            return 0
    return 1 if ascending else -1


def _sorted_row_dots(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray,
                     sources: np.ndarray, targets: np.ndarray, descending: bool,
                     out: np.ndarray) -> None:
    """``out[i]`` (float64) += the dot product of CSR rows ``sources[i]`` and
    ``targets[i]``, whose column indices ascend (``descending``: descend): the columns
    both rows hold, in ascending order, each product exact in float64."""
    for pair in range(len(sources)):
        p, p_end = indptr[sources[pair]], indptr[sources[pair] + 1]
        q, q_end = indptr[targets[pair]], indptr[targets[pair] + 1]
        if descending:
            p, p_end, q, q_end = p_end - 1, p - 1, q_end - 1, q - 1
        step = -1 if descending else 1
        while p != p_end and q != q_end:
            if indices[p] == indices[q]:
                out[pair] += np.float64(data[p]) * np.float64(data[q])
                p += step
                q += step
            elif indices[p] < indices[q]:
                p += step
            else:
                q += step
