"""Is a text watermarked with a key? A one-sided binomial test over its distinct
(context, token) pairs.

Under the null hypothesis (the text was written without knowledge of the key) each
*distinct* (context, token) pair is green with probability ``gamma``, independently of
the others, because its greenness is a keyed hash of the pair. Repeated pairs are not
independent (a repeated phrase repeats its greens), so each pair is scored once: the count
of green pairs among ``n`` distinct pairs is then Binomial(n, gamma) exactly. The p-value
is that binomial's upper tail; ``z`` is the usual normal-approximation score
``(green - gamma n) / sqrt(n gamma (1 - gamma))``.

A text is called watermarked when ``p_value <= alpha``; ``DEFAULT_ALPHA`` is the one-sided
normal tail at z = 4 (3.17e-5), so about 3 in 100,000 unwatermarked texts are flagged by
chance, whatever their length (the exact binomial never exceeds its level, where z > 4 on
short texts would).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from tokenizers import Tokenizer

from distillguard.safeguards.tokenizer import encode_texts
from distillguard.safeguards.watermark import DEFAULT_WATERMARK, WatermarkParams, pair_hashes

__all__ = [
    "DEFAULT_ALPHA",
    "TEST_NAME",
    "WatermarkScore",
    "binomial_score",
    "binomial_scores",
    "distinct_pairs",
    "score_ids",
    "score_many",
    "score_pooled",
    "score_texts",
]

# The standard normal's upper tail at 4 (scipy.stats.norm.sf(4.0); a test checks it).
# scipy is imported only where a p-value is computed: the gateway imports this package
# for its canaries and plans and needs none of scipy's startup time.
DEFAULT_ALPHA = 3.167124183311986e-05
TEST_NAME = ("one-sided exact binomial test of green (context, token) pairs, each distinct "
             "pair scored once")


@dataclass(frozen=True, slots=True)
class WatermarkScore:
    """``tokens``: tokens of the text; ``scored``: distinct (context, token) pairs scored;
    ``green``: how many of them are green; ``z`` and ``p_value`` as in the module doc."""

    tokens: int
    scored: int
    green: int
    z: float
    p_value: float

    def watermarked(self, alpha: float = DEFAULT_ALPHA) -> bool:
        return self.p_value <= alpha

    def as_dict(self) -> dict[str, float | int]:
        return {"tokens": self.tokens, "scored": self.scored, "green": self.green,
                "green_share": self.green / self.scored if self.scored else 0.0,
                "z": self.z, "p_value": self.p_value}


def binomial_scores(green: np.ndarray, scored: np.ndarray, gamma: float,
                    tokens: np.ndarray) -> list[WatermarkScore]:
    """Scores of many texts at once from their green and scored pair counts."""
    from scipy.stats import binom

    green = np.asarray(green, dtype=np.int64)
    scored = np.asarray(scored, dtype=np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(scored > 0, (green - gamma * scored)
                     / np.sqrt(np.maximum(scored, 1) * gamma * (1.0 - gamma)), 0.0)
    p = np.where(scored > 0, np.clip(binom.sf(green - 1, scored, gamma), 0.0, 1.0), 1.0)
    return [WatermarkScore(int(t), int(n), int(g), float(zz), float(pp))
            for t, n, g, zz, pp in zip(tokens, scored, green, z, p, strict=True)]


def binomial_score(green: int, scored: int, gamma: float, tokens: int = 0) -> WatermarkScore:
    """The z-score and exact binomial p-value of ``green`` greens among ``scored`` pairs."""
    return binomial_scores(np.array([green]), np.array([scored]), gamma, np.array([tokens]))[0]


def distinct_pairs(ids: np.ndarray, key: str, params: WatermarkParams = DEFAULT_WATERMARK
                   ) -> np.ndarray:
    """The distinct (context, token) pair hashes of one token sequence, sorted."""
    return np.unique(pair_hashes(ids, key, params))


def _pair_counts(sequences: Sequence[np.ndarray], key: str, params: WatermarkParams
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tokens, distinct pairs and distinct green pairs of each sequence, in one vectorized
    pass over all of them (hash every position, sort by (sequence, hash), count runs)."""
    lengths = np.fromiter((np.size(s) for s in sequences), dtype=np.int64, count=len(sequences))
    counts = np.zeros(len(sequences), dtype=np.int64)
    if lengths.sum() == 0:
        return lengths, counts, counts.copy()
    ids = np.concatenate([np.asarray(s, dtype=np.int64) for s in sequences])
    hashes = pair_hashes(ids, key, params)
    h = params.context_width
    seq = np.repeat(np.arange(len(sequences)), lengths)[h:]
    local = (np.arange(ids.size) - np.repeat(np.cumsum(lengths) - lengths, lengths))[h:]
    keep = local >= h
    seq, hashes = seq[keep], hashes[keep]
    order = np.lexsort((hashes, seq))
    seq, hashes = seq[order], hashes[order]
    first = np.ones(seq.size, dtype=bool)
    first[1:] = (seq[1:] != seq[:-1]) | (hashes[1:] != hashes[:-1])
    scored = np.bincount(seq[first], minlength=len(sequences))
    green = np.bincount(seq[first & (hashes < params.threshold)], minlength=len(sequences))
    return lengths, scored, green


def score_many(sequences: Sequence[np.ndarray], key: str,
               params: WatermarkParams = DEFAULT_WATERMARK) -> list[WatermarkScore]:
    """Score each token sequence on its own (vectorized over all of them)."""
    tokens, scored, green = _pair_counts(sequences, key, params)
    return binomial_scores(green, scored, params.gamma, tokens)


def score_ids(ids: np.ndarray, key: str, params: WatermarkParams = DEFAULT_WATERMARK
              ) -> WatermarkScore:
    """Score one token sequence."""
    return score_many([ids], key, params)[0]


def score_texts(texts: Sequence[str], tokenizer: Tokenizer, key: str,
                params: WatermarkParams = DEFAULT_WATERMARK) -> list[WatermarkScore]:
    """Score each text on its own (the tokenizer must be the generating model's)."""
    return score_many(encode_texts(tokenizer, texts), key, params)


def score_pooled(sequences: Iterable[np.ndarray], key: str,
                 params: WatermarkParams = DEFAULT_WATERMARK, *,
                 exclude: np.ndarray | None = None) -> WatermarkScore:
    """One test over many token sequences together: every distinct pair across all of them
    is scored once, and pairs whose hash is in ``exclude`` (pairs of the prompts that
    produced the texts, say) are not scored at all."""
    sequences = list(sequences)
    parts = [pair_hashes(ids, key, params) for ids in sequences]
    tokens = sum(int(np.size(ids)) for ids in sequences)
    pairs = np.unique(np.concatenate(parts)) if parts else np.empty(0, dtype=np.uint64)
    if exclude is not None and exclude.size:
        pairs = pairs[~np.isin(pairs, exclude, assume_unique=False)]
    green = int(np.count_nonzero(pairs < params.threshold))
    return binomial_score(green, int(pairs.size), params.gamma, tokens=tokens)
