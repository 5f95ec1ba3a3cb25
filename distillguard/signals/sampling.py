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

__all__ = ["keep_probability", "sample_mask"]

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
