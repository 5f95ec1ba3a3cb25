"""Which exchanges get content signals: a stable per-account sample.

Content signals cost tens of microseconds per exchange; behavior needs every
exchange but content shares do not. Each account contributes about
``per_account`` exchanges, chosen by a stable hash of ``request_id``, so every
engine and every run picks the same ones, and an account's shares are
estimated from an unbiased sample. Findings say when a share comes from a
sample.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from distillguard.signals.hashing import hash_strings

__all__ = ["AccountCounts", "keep_probability", "sample_mask"]

_SCALE = float(2**64)


def keep_probability(account_exchanges: np.ndarray, per_account: int) -> np.ndarray:
    """Per exchange, the chance it is sampled, from its account's exchange count:
    1 for small accounts, ``per_account / n`` beyond (a count of 0 or less keeps all)."""
    n = np.asarray(account_exchanges, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.where(n > 0, np.minimum(1.0, per_account / np.maximum(n, 1.0)), 1.0)


def sample_mask(request_hashes: np.ndarray, rate: np.ndarray) -> np.ndarray:
    """True for the exchanges in the sample: the request id's stable hash
    (``hash_strings`` of ``request_id``) below its rate."""
    return request_hashes.astype(np.float64) / _SCALE < rate


class AccountCounts:
    """Each account's exchange count, looked up for a batch's ``account_id`` column.

    Keyed by the accounts' 64-bit string hashes, sorted once: a lookup is a hash per
    row and a binary search, where ``pyarrow.compute.index_in`` rebuilt a hash table of
    every account for every batch (29 ms per 8,192 rows against 76,000 accounts; 7 ms
    this way).
    """

    def __init__(self, accounts: pa.Array, counts: np.ndarray) -> None:
        keys = hash_strings(accounts)
        order = np.argsort(keys, kind="stable")
        self._keys = keys[order]
        self._counts = np.asarray(counts, dtype=np.int64)[order]

    def of(self, account_ids: pa.Array) -> np.ndarray:
        """The count of each row's account (0 for an account not known)."""
        if isinstance(account_ids, pa.ChunkedArray):
            account_ids = account_ids.combine_chunks()
        keys = hash_strings(account_ids)
        if not len(self._keys):
            return np.zeros(len(keys), np.int64)
        at = np.minimum(np.searchsorted(self._keys, keys), len(self._keys) - 1)
        known = (self._keys[at] == keys) & np.asarray(account_ids.is_valid())
        return np.where(known, self._counts[at], 0)
