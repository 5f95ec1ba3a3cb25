"""Accounts that ask for the same things: nearest neighbours over shared template units.

Each account is a vector over the shared template units it uses (its share of
sampled requests carrying the unit, times the unit's rarity among accounts);
two accounts of one campaign draw from the same pipelines and point the same
way. Neighbours come from exact cosine similarity, computed in blocks so that
memory stays bounded (block rows x accounts floats at a time, ``BLOCK_CELLS``).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse as sp

from distillguard.compiled import compiled

__all__ = ["account_unit_matrix", "content_neighbors", "neighbors_and_pair_cosines",
           "normalize_rows"]


# Unit uses weighed at once while building the account-unit matrix: bounds the
# temporary arrays (float64 products) whatever the number of uses.
WEIGHT_CHUNK = 1 << 22


def account_unit_matrix(account_index: np.ndarray, unit_index: np.ndarray, counts: np.ndarray,
                        sampled: np.ndarray, n_units: int) -> sp.csr_matrix:
    """Rows: accounts (``sampled[i]`` requests each); columns: units; L2-normalized rows.

    ``account_index``, ``unit_index`` and ``counts`` list, for each (account,
    unit) pair, how many of the account's sampled requests carry the unit.
    """
    n_accounts = len(sampled)
    df = np.bincount(unit_index, minlength=n_units)
    idf = np.log1p(n_accounts / np.maximum(df, 1))
    weights = np.empty(len(counts), dtype=np.float32)
    for start in range(0, len(counts), WEIGHT_CHUNK):
        part = slice(start, start + WEIGHT_CHUNK)
        share = counts[part] / np.maximum(sampled[account_index[part]], 1)
        weights[part] = share * idf[unit_index[part]]
    return normalize_rows(sp.csr_matrix((weights, (account_index, unit_index)),
                                        shape=(n_accounts, n_units), dtype=np.float32))


def normalize_rows(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """``matrix`` with each row scaled to unit length (empty rows stay empty)."""
    if matrix.has_canonical_format:
        # what ``matrix.multiply(matrix)`` holds, sharing the matrix's indices
        squares = sp.csr_matrix((matrix.data * matrix.data, matrix.indices, matrix.indptr),
                                shape=matrix.shape)
    else:
        squares = matrix.multiply(matrix)
    norms = np.sqrt(np.asarray(squares.sum(axis=1)).ravel())
    del squares
    scale = sp.diags(np.where(norms > 0, 1.0 / np.maximum(norms, 1e-12), 0.0).astype(np.float32))
    return (scale @ matrix).tocsr()


# Similarities computed at once (all blocks in flight together): a block of rows times
# every account. About 16 bytes each while a block is worked on (the dense products, the
# negated copy and the partition's 64-bit positions; more with dense columns), so about
# 32 MB; rows per block follow from the accounts. 8M cells put the 15.6M scan's
# account graph (64,745 accounts) 6 MB over a 2 GiB peak; 2M cost no more time than
# 4M on a scale-0.1 candidate graph (3.5-3.9 s either way, compiled products).
BLOCK_CELLS = 2_000_000


# Columns (template units) shared by at least this share of the accounts are multiplied
# as dense arrays: a sparse product pays per pair of accounts sharing a column (a unit
# every campaign account uses costs accounts^2 lookups), a dense one pays per cell
# but far faster (BLAS). At most ``DENSE_CELLS`` accounts x columns floats (64 MB),
# the most shared columns first, and only when they hold at least
# ``DENSE_MIN_PRODUCT_SHARE`` of the sparse product's work (the sum of squared column
# counts): otherwise the split costs a copy of the matrix and saves nothing. Measured
# (2 threads): a campaign community's 2,500 members (7,000 units each) 20.5 -> 10.0 s;
# all 11,164 accounts of the same log, where the budget covers a third of the work,
# 20.0 vs 21.1 s, hence the bar.
DENSE_MIN_SHARE = 0.1
DENSE_CELLS = 16_000_000
DENSE_MIN_PRODUCT_SHARE = 0.5
# The dense product is taken this many rows at a time, at the same row offsets whatever
# the block size (blocks are whole chunks): BLAS may round a product's last float32 bit
# differently for matrices of other shapes (OpenBLAS's kernels for small ones), and
# the cosines, hence the edges, must not depend on ``block_rows`` or ``threads``.
DENSE_CHUNK_ROWS = 64


def _split_dense_columns(transposed: sp.csr_matrix) -> tuple[sp.csr_matrix, np.ndarray]:
    """``transposed`` (columns x accounts) without its most shared columns, and those
    columns as a dense array (columns x accounts)."""
    n_columns, n = transposed.shape
    df = np.diff(transposed.indptr)
    limit = min(DENSE_CELLS // max(n, 1), n_columns)
    top = np.argsort(-df, kind="stable")[:limit]
    dense_columns = np.sort(top[df[top] >= max(2, DENSE_MIN_SHARE * n)])
    work = df.astype(np.float64) ** 2
    if not len(dense_columns) or work[dense_columns].sum() < DENSE_MIN_PRODUCT_SHARE * work.sum():
        return transposed, np.zeros((0, n), np.float32)
    dense = transposed[dense_columns].toarray().astype(np.float32, copy=False)
    kept = np.ones(n_columns, bool)
    kept[dense_columns] = False
    per_row = np.where(kept, df, 0)
    values = np.repeat(kept, df)
    sparse = sp.csr_matrix((transposed.data[values], transposed.indices[values],
                            np.concatenate([[0], np.cumsum(per_row)])), shape=transposed.shape)
    return sparse, dense


def _sparse_rows_times_sparse(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray,
                              right_indptr: np.ndarray, right_indices: np.ndarray,
                              right_data: np.ndarray, start: int, out: np.ndarray) -> None:
    """``out += matrix[start:start + len(out)] @ right``, both CSR, ``out`` dense.

    Scipy's sparse product builds a sparse result (a linked list of touched columns
    per row) that the search then densifies; adding straight into the dense rows does
    the same float32 additions in the same order (each row's entries in turn, each
    entry's column of ``right`` in turn), so the cosines are bit for bit scipy's, at
    about two thirds of the time (measured on 2,000 rows of a scale-0.1 candidate
    matrix: 2.00 -> 1.30 s).
    """
    for row in range(len(out)):
        sims = out[row]
        for entry in range(indptr[start + row], indptr[start + row + 1]):
            column = indices[entry]
            weight = data[entry]
            for other in range(right_indptr[column], right_indptr[column + 1]):
                sims[right_indices[other]] += weight * right_data[other]


def _block_neighbors(matrix: sp.csr_matrix, transposed: sp.csr_matrix, dense: np.ndarray,
                     start: int, stop: int, k: int, min_cosine: float, pair_sources: np.ndarray,
                     pair_targets: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The ``k`` most similar accounts of rows ``start:stop`` (``k`` < the accounts), and
    the cosines of the pairs ``pair_sources[i]``, ``pair_targets[i]`` whose source is one
    of those rows (``pair_sources`` sorted). ``transposed`` and ``dense``: the matrix's
    columns (``_split_dense_columns``)."""
    sims = np.zeros((stop - start, matrix.shape[0]),
                    np.result_type(matrix.dtype, transposed.dtype))
    compiled(_sparse_rows_times_sparse)(matrix.indptr, matrix.indices, matrix.data,
                                        transposed.indptr, transposed.indices, transposed.data,
                                        start, sims)
    if len(dense):
        for chunk in range(start, stop, DENSE_CHUNK_ROWS):
            end = min(chunk + DENSE_CHUNK_ROWS, stop)
            sims[chunk - start:end - start] += dense[:, chunk:end].T @ dense
    lo, hi = np.searchsorted(pair_sources, [start, stop])
    wanted = sims[pair_sources[lo:hi] - start, pair_targets[lo:hi]]
    rows = np.arange(stop - start)
    sims[rows, rows + start] = 0.0
    top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    top_sims = np.take_along_axis(sims, top, axis=1)
    keep = top_sims >= min_cosine
    return np.repeat(rows + start, k).reshape(-1, k)[keep], top[keep], top_sims[keep], wanted


def content_neighbors(matrix: sp.csr_matrix, *, k: int, min_cosine: float,
                      block_rows: int | None = None, threads: int = 1
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each account's ``k`` most similar accounts with cosine >= ``min_cosine``.

    Returns edge arrays ``(source, target, cosine)`` with ``source < target``
    and no duplicates. ``block_rows`` (default: as many as ``BLOCK_CELLS`` allows
    across ``threads`` blocks at a time, at most 1,024; rounded up to whole
    ``DENSE_CHUNK_ROWS``) sets the memory, not the
    result; nor do ``threads`` (the compiled product and numpy's partition let
    go of the interpreter lock, so blocks run side by side: 19 -> 12 s for 10,628
    accounts on 2 busy cores).
    """
    none = np.zeros(0, dtype=np.int64)
    return neighbors_and_pair_cosines(matrix, none, none, k=k, min_cosine=min_cosine,
                                      block_rows=block_rows, threads=threads)[:3]


def neighbors_and_pair_cosines(matrix: sp.csr_matrix, sources: np.ndarray, targets: np.ndarray,
                               *, k: int, min_cosine: float, block_rows: int | None = None,
                               threads: int = 1
                               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``content_neighbors``, and the cosines of rows ``sources[i]`` and ``targets[i]``
    taken from the same products: for the pairs of another search, dot products row by
    row cost as much as the search again (a campaign account's row holds thousands of
    template units)."""
    n = matrix.shape[0]
    kk = min(k, n - 1)
    if kk <= 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0, dtype=np.float32), np.zeros(len(sources), np.float32)
    threads = max(1, threads)
    if block_rows is None:
        block_rows = max(16, min(1024, BLOCK_CELLS // threads // max(n, 1)))
    block_rows = -(-block_rows // DENSE_CHUNK_ROWS) * DENSE_CHUNK_ROWS
    order = np.argsort(sources, kind="stable")
    pair_sources = np.asarray(sources, np.int64)[order]
    pair_targets = np.asarray(targets, np.int64)[order]
    # the columns as CSR rows, converted once for every block's product
    transposed, dense = _split_dense_columns(matrix.T.tocsr())

    def block(start: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return _block_neighbors(matrix, transposed, dense, start, min(start + block_rows, n),
                                kk, min_cosine, pair_sources, pair_targets)

    starts = range(0, n, block_rows)
    if threads == 1:
        blocks = [block(start) for start in starts]
    else:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            blocks = list(pool.map(block, starts))
    src = np.concatenate([b[0] for b in blocks])
    dst = np.concatenate([b[1] for b in blocks])
    w = np.concatenate([b[2] for b in blocks])
    pair_cosines = np.empty(len(order), np.float32)
    pair_cosines[order] = np.concatenate([b[3] for b in blocks])
    lo, hi = np.minimum(src, dst), np.maximum(src, dst)
    key = lo.astype(np.int64) * n + hi
    _, first = np.unique(key, return_index=True)
    return lo[first], hi[first], w[first].astype(np.float32), pair_cosines
