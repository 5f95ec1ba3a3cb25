"""A bigram language model in numpy: a teacher and students that need no torch and fit
their training data exactly (counts from real token ids, sampling with or without the
watermark's logit bias). The tests use it, and the radioactivity benchmark uses it to show
what the tests can detect when a student learns its data fully."""

from __future__ import annotations

import numpy as np

from distillguard.safeguards.watermark import WatermarkParams, green_mask

__all__ = ["bigram_counts", "log_probs", "sample"]


def bigram_counts(sequences: list[np.ndarray], vocab: int) -> np.ndarray:
    firsts = np.concatenate([ids[:-1] for ids in sequences if ids.size > 1])
    seconds = np.concatenate([ids[1:] for ids in sequences if ids.size > 1])
    return np.bincount(firsts * vocab + seconds, minlength=vocab * vocab).reshape(
        vocab, vocab).astype(float)


def log_probs(counts: np.ndarray, smoothing: float = 0.05) -> np.ndarray:
    p = counts + smoothing
    return np.log(p / p.sum(axis=1, keepdims=True))


def sample(logp: np.ndarray, starts: np.ndarray, length: int, rng: np.random.Generator, *,
           key: str | None = None, params: WatermarkParams | None = None) -> list[np.ndarray]:
    """``length`` tokens after each start token, watermarked when ``key`` is given (the
    green lists of every one-token context computed once, as a table)."""
    params = params or WatermarkParams()
    vocab = logp.shape[1]
    if key is not None:
        logp = logp + params.delta * green_mask(np.arange(vocab)[:, None], key, vocab, params)
    cdf = np.cumsum(np.exp(logp - logp.max(axis=1, keepdims=True)), axis=1)
    out = np.empty((starts.size, length + 1), dtype=np.int64)
    out[:, 0] = starts
    for t in range(length):
        rows = cdf[out[:, t]]
        u = rng.random(starts.size) * rows[:, -1]
        out[:, t + 1] = np.minimum((rows < u[:, None]).sum(axis=1), vocab - 1)
    return list(out[:, 1:])
