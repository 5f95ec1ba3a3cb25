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
import pyarrow.compute as pc

from distillguard.signals.hashing import hash_strings

__all__ = ["sample_mask", "sampling_rates"]

_SCALE = float(2**64)


def sampling_rates(exchanges_per_account: dict[str, int], per_account: int) -> dict[str, float]:
    """Keep-probability per account: 1 for small accounts, ``per_account / n`` beyond."""
    return {a: min(1.0, per_account / n) for a, n in exchanges_per_account.items() if n > 0}


def sample_mask(request_ids: pa.Array, account_ids: pa.Array,
                rates: dict[str, float]) -> np.ndarray:
    """True for the exchanges in the sample (accounts missing from ``rates`` keep all)."""
    if isinstance(account_ids, pa.ChunkedArray):
        account_ids = account_ids.combine_chunks()
    encoded = pc.dictionary_encode(account_ids)
    per_value = np.array([rates.get(a, 1.0) for a in encoded.dictionary.to_pylist()],
                         dtype=np.float64)
    if not len(per_value):
        return np.zeros(0, dtype=bool)
    rate = per_value[np.asarray(encoded.indices)]
    position = hash_strings(request_ids).astype(np.float64) / _SCALE
    return position < rate
