"""A keyed green-list watermark (Kirchenbauer et al. 2023, "KGW"), as plain numpy.

At every generation step the previous ``context_width`` token ids and the key pick a
pseudo-random share ``gamma`` of the vocabulary, the *green list*; ``delta`` is added to
the green tokens' logits, so a watermarked text holds more green tokens than chance.
Whether a token is green after a context is one 64-bit keyed hash of (key, context,
token) compared with ``gamma * 2**64``: the same function serves generation (a whole row
of the vocabulary per step), detection (one hash per scored token) and the de-duplication
of repeated (context, token) pairs (equal pairs hash equal).

The key is any string; ``derive_key`` makes one key per campaign or account group from
one secret, so an output traces back to who received it.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from distillguard.errors import RuleValidationError

__all__ = ["DEFAULT_WATERMARK", "WATERMARK_HEADER", "WatermarkParams", "bias_logits",
           "context_token_hashes", "derive_key", "green_mask", "key_seed", "pair_hashes",
           "parse_watermark_header", "watermark_header"]

# The request header by which a gateway asks its serving stack to watermark one answer.
WATERMARK_HEADER = "x-distillguard-watermark"

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_TOKEN_SALT = np.uint64(0x2545F4914F6CDD1D)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)


@dataclass(frozen=True, slots=True)
class WatermarkParams:
    """``gamma``: share of the vocabulary that is green; ``delta``: logit bias added to
    green tokens (the strength); ``context_width``: previous tokens that seed the list."""

    gamma: float = 0.25
    delta: float = 2.0
    context_width: int = 1

    def __post_init__(self) -> None:
        if not 0.0 < self.gamma < 1.0:
            msg = f"The 'gamma' of a watermark must be a float in (0, 1). Got {self.gamma!r}."
            raise RuleValidationError(msg)
        if self.delta < 0.0:
            msg = f"The 'delta' of a watermark must be >= 0. Got {self.delta!r}."
            raise RuleValidationError(msg)
        if not 1 <= self.context_width <= 8:
            msg = f"The 'context_width' of a watermark must be in 1..8. Got {self.context_width!r}."
            raise RuleValidationError(msg)

    @property
    def threshold(self) -> np.uint64:
        """Hashes below this are green."""
        return np.uint64(min(int(self.gamma * 2**64), 2**64 - 1))


DEFAULT_WATERMARK = WatermarkParams()


def key_seed(key: str) -> np.uint64:
    """The 64-bit seed of a key string."""
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8, person=b"dg-watermark").digest()
    return np.uint64(int.from_bytes(digest, "big"))


def derive_key(secret: str, group: str) -> str:
    """The watermark key of one campaign or account group: HMAC-SHA256 of ``group`` under
    ``secret``, hex. Anyone holding the secret can re-derive every group's key.

    >>> derive_key("s3cret", "C1")[:16]
    '35d655535f56a073'
    """
    return hmac.new(secret.encode("utf-8"), group.encode("utf-8"), hashlib.sha256).hexdigest()


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer on a uint64 array (multiplication wraps, as intended)."""
    x = x ^ (x >> _S30)
    x = x * _M1
    x = x ^ (x >> _S27)
    x = x * _M2
    return x ^ (x >> _S31)


def _context_seeds(contexts: np.ndarray, seed: np.uint64) -> np.ndarray:
    """One uint64 per row of ``contexts`` (n, context_width): the seed of its green list."""
    s = np.full(contexts.shape[0], seed, dtype=np.uint64)
    for j in range(contexts.shape[1]):
        s = _mix(s ^ ((contexts[:, j].astype(np.uint64) + np.uint64(1)) * _GOLDEN))
    return s


def _token_codes(tokens: np.ndarray) -> np.ndarray:
    return _mix((tokens.astype(np.uint64) + np.uint64(1)) * _GOLDEN ^ _TOKEN_SALT)


@lru_cache(maxsize=8)
def _vocabulary_codes(vocab_size: int) -> np.ndarray:
    """Every token's code, computed once per vocabulary size (read-only)."""
    codes = _token_codes(np.arange(vocab_size))
    codes.flags.writeable = False
    return codes


def context_token_hashes(contexts: np.ndarray, tokens: np.ndarray, key: str) -> np.ndarray:
    """The keyed hash of each (context row, token): ``contexts`` (n, context_width) ids,
    ``tokens`` (n,) ids; green when below ``WatermarkParams.threshold``."""
    contexts = np.asarray(contexts, dtype=np.int64).reshape(len(tokens), -1)
    return _mix(_context_seeds(contexts, key_seed(key)) ^ _token_codes(np.asarray(tokens)))


def pair_hashes(ids: np.ndarray, key: str, params: WatermarkParams = DEFAULT_WATERMARK
                ) -> np.ndarray:
    """The keyed hash of every (context, token) pair of one token sequence, uint64.

    Position ``i`` (for ``i >= context_width``) pairs token ``ids[i]`` with the
    ``context_width`` tokens before it; a pair is green when its hash is below
    ``params.threshold``. Equal pairs give equal hashes, so ``np.unique`` de-duplicates.
    """
    ids = np.asarray(ids, dtype=np.int64)
    h = params.context_width
    if ids.size <= h:
        return np.empty(0, dtype=np.uint64)
    return context_token_hashes(np.lib.stride_tricks.sliding_window_view(ids[:-1], h), ids[h:],
                                key)


def green_mask(contexts: np.ndarray, key: str, vocab_size: int,
               params: WatermarkParams = DEFAULT_WATERMARK) -> np.ndarray:
    """Green lists for a batch: bool (batch, vocab_size), row ``b`` the tokens green after
    the context ``contexts[b]`` (its last ``context_width`` token ids)."""
    contexts = np.atleast_2d(np.asarray(contexts, dtype=np.int64))[:, -params.context_width:]
    seeds = _context_seeds(contexts, key_seed(key))
    return _mix(seeds[:, None] ^ _vocabulary_codes(vocab_size)[None, :]) < params.threshold


def bias_logits(logits: np.ndarray, contexts: np.ndarray, key: str,
                params: WatermarkParams = DEFAULT_WATERMARK) -> np.ndarray:
    """``logits`` (batch, vocab) with ``params.delta`` added to each row's green tokens: the
    watermark for any serving stack that exposes next-token logits.

    Rows whose context is shorter than ``context_width`` must be left out by the caller
    (nothing seeds their list).
    """
    logits = np.asarray(logits)
    mask = green_mask(contexts, key, logits.shape[-1], params)
    return logits + params.delta * mask


def watermark_header(key: str, params: WatermarkParams = DEFAULT_WATERMARK) -> str:
    """The value of ``WATERMARK_HEADER`` asking the serving stack to watermark an answer
    with ``key`` and ``params``.

    >>> watermark_header("ab12", WatermarkParams())
    'key=ab12; gamma=0.25; delta=2.0; context_width=1'
    """
    if not key or any(c in key for c in ";= \r\n"):
        msg = (f"A watermark key in a header must be a non-empty token without ';', '=' or "
               f"spaces. Got {key!r}.")
        raise RuleValidationError(msg)
    return (f"key={key}; gamma={params.gamma!r}; delta={params.delta!r}; "
            f"context_width={params.context_width}")


def parse_watermark_header(value: str) -> tuple[str, WatermarkParams]:
    """The key and parameters of a ``WATERMARK_HEADER`` value (what a serving stack
    calls before building its ``WatermarkLogitsProcessor``).

    Raises ``RuleValidationError`` naming what is wrong.
    """
    fields: dict[str, str] = {}
    for part in value.split(";"):
        name, sep, val = part.strip().partition("=")
        if not sep or not name or not val:
            msg = f"A watermark header is 'key=K; gamma=G; delta=D; context_width=W'. Got {value!r}."
            raise RuleValidationError(msg)
        fields[name] = val
    unknown = set(fields) - {"key", "gamma", "delta", "context_width"}
    if "key" not in fields or unknown:
        msg = (f"A watermark header needs 'key' and knows only key, gamma, delta, "
               f"context_width. Got {value!r}.")
        raise RuleValidationError(msg)
    try:
        params = WatermarkParams(gamma=float(fields.get("gamma", DEFAULT_WATERMARK.gamma)),
                                 delta=float(fields.get("delta", DEFAULT_WATERMARK.delta)),
                                 context_width=int(fields.get(
                                     "context_width", DEFAULT_WATERMARK.context_width)))
    except ValueError as exc:
        msg = f"A watermark header's gamma, delta and context_width are numbers. Got {value!r}."
        raise RuleValidationError(msg) from exc
    return fields["key"], params
