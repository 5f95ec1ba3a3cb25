"""Was a suspect model trained on our watermarked outputs? ("radioactivity", Sander et al.
2024, "Watermarking Makes Language Models Radioactive").

A model fine-tuned on watermarked text learns the green lists' bias: its own outputs and
its next-token predictions lean green under the key, though it never ran the watermark.

- **Black box** (``black_box_test``): the suspect answers prompts we choose (the prompts a
  flagged campaign sent us, say); all its answers are pooled and every distinct
  (context, token) pair is scored once, leaving out pairs that occur in the prompts
  (a model can copy its prompt). Under the null hypothesis (never trained on text
  carrying this key) the green count is Binomial(n, gamma) exactly, whatever the model.
- **Open model** (``open_model_test``, "reading mode"): with the weights, feed text through
  the suspect and take its most likely next token at every position; score each distinct
  (context, predicted token) pair once, leaving out pairs that occur in the fed text itself.
  Far more positions per query and no sampling noise. Exact when the fed text does not
  depend on the key (unwatermarked text: held-out corpus text or the campaign's prompts).
- **Open model, green mass** (``green_mass_test``): the same reading, but the suspect's
  whole next-token distribution counts, not only its top guesses: the statistic is the
  probability mass it puts on green tokens, summed over positions, minus ``gamma`` times
  the positions. A student that learned a little of the bias moves every green token's
  probability a little; the top-1 token rarely changes, the mass does.
- **Black box, counted** (``black_box_count_test``): the suspect's sampled answers, every
  occurrence of a (context, token) pair counted (not only distinct ones), so a pair the
  suspect produces often weighs more.

The two weighted tests share one null distribution: given the weights (the suspect's
probabilities or counts, which do not depend on the key when the suspect never saw it),
the statistic is ``sum W[c, v] (green[c, v] - gamma)`` over distinct (context, token)
pairs, a sum of independent centred Bernoulli variables. Its p-value is the Chernoff
bound ``min over l >= 0 of exp(-l s) E[exp(l S)]``, an upper bound on the exact tail
whatever the weights (conservative, never anti-conservative); ``z`` is the statistic over
its null standard deviation, for reading.

Every test returns a ``WatermarkScore``; its ``p_value`` is the evidence.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from distillguard.errors import RuleValidationError
from distillguard.safeguards.detect import WatermarkScore, binomial_score, score_pooled
from distillguard.safeguards.watermark import (
    DEFAULT_WATERMARK,
    WatermarkParams,
    context_token_hashes,
    green_mask,
    pair_hashes,
)

__all__ = ["black_box_count_test", "black_box_test", "chernoff_p_value", "green_mass_test",
           "open_model_test", "prompt_pairs", "weighted_green_score"]


def prompt_pairs(prompts: Sequence[np.ndarray], key: str,
                 params: WatermarkParams = DEFAULT_WATERMARK) -> np.ndarray:
    """Distinct pair hashes of the prompts (left out of the black-box test)."""
    parts = [pair_hashes(p, key, params) for p in prompts]
    return np.unique(np.concatenate(parts)) if parts else np.empty(0, dtype=np.uint64)


def black_box_test(outputs: Sequence[np.ndarray], key: str,
                   params: WatermarkParams = DEFAULT_WATERMARK, *,
                   prompts: Sequence[np.ndarray] = ()) -> WatermarkScore:
    """One pooled test over a suspect's answers (token ids, prompts excluded); pairs that
    occur in ``prompts`` are not scored."""
    return score_pooled(outputs, key, params, exclude=prompt_pairs(prompts, key, params))


def open_model_test(fed: np.ndarray, predicted: np.ndarray, key: str,
                    params: WatermarkParams = DEFAULT_WATERMARK) -> WatermarkScore:
    """Reading-mode test: ``fed`` (n, T) token ids given to the suspect, ``predicted``
    (n, T) or (n, T, k) its most likely next token(s) at each position (``predicted[:, t]``
    follows ``fed[:, :t + 1]``). With k > 1 every (context, top-k token) pair counts."""
    fed = np.asarray(fed, dtype=np.int64)
    predicted = np.asarray(predicted, dtype=np.int64)
    if predicted.ndim == 2:
        predicted = predicted[:, :, None]
    h = params.context_width
    if fed.ndim != 2 or fed.shape != predicted.shape[:2] or fed.shape[1] < h:
        return binomial_score(0, 0, params.gamma)
    k = predicted.shape[2]
    windows = np.lib.stride_tricks.sliding_window_view(fed, h, axis=1)  # (n, T-h+1, h)
    contexts = np.repeat(windows.reshape(-1, h), k, axis=0)
    tokens = predicted[:, h - 1:, :].reshape(-1)
    hashes = np.unique(context_token_hashes(contexts, tokens, key))
    in_text = np.unique(np.concatenate([pair_hashes(row, key, params) for row in fed]))
    hashes = hashes[~np.isin(hashes, in_text)]
    green = int(np.count_nonzero(hashes < params.threshold))
    return binomial_score(green, int(hashes.size), params.gamma, tokens=int(tokens.size))


def chernoff_p_value(statistic: float, weights: np.ndarray, gamma: float) -> float:
    """An upper bound on P(sum w_i (B_i - gamma) >= statistic), B_i independent
    Bernoulli(gamma): ``min over l >= 0 of exp(-l statistic) prod E[exp(l w_i (B_i - gamma))]``
    (the Chernoff bound; 1 when the statistic is not above its mean 0)."""
    from scipy.optimize import minimize_scalar  # not at import time (see detect.py)

    w = np.asarray(weights, dtype=np.float64)
    w = w[w > 0]
    if statistic <= 0 or w.size == 0:
        return 1.0
    if statistic >= (1 - gamma) * w.sum():  # every pair green: the largest value there is
        return float(np.exp(np.log(gamma) * w.size))
    log_g, log_1g = np.log(gamma), np.log1p(-gamma)

    def log_bound(lam: float) -> float:
        return float(np.logaddexp(log_1g, log_g + lam * w).sum() - lam * (gamma * w.sum()
                                                                           + statistic))
    # The bound's exponent is convex in l; it is below 0 somewhere in (0, upper].
    upper = 1.0
    while log_bound(upper) < log_bound(upper / 2) and upper < 1e12:
        upper *= 2
    best = minimize_scalar(log_bound, bounds=(0.0, upper), method="bounded",
                           options={"xatol": 1e-10 * upper})
    return float(min(1.0, np.exp(min(best.fun, 0.0))))


def weighted_green_score(contexts: np.ndarray, weights: np.ndarray, key: str,
                         params: WatermarkParams = DEFAULT_WATERMARK, *,
                         tokens: int = 0, exclude: np.ndarray | None = None,
                         per_context: bool = False) -> WatermarkScore:
    """The weighted test over ``weights`` (n, vocab): row ``i`` the weight of every token
    after context ``contexts[i]`` (n, context_width). Rows with equal contexts share one
    green list: they are summed, or with ``per_context`` averaged (each distinct context
    then weighs alike, however often it occurs). Pairs whose hash is in ``exclude`` weigh 0.
    In the score, ``scored`` and ``green`` are the total and the green weight, rounded."""
    contexts = np.asarray(contexts, dtype=np.int64).reshape(len(weights), -1)
    if contexts.shape[0] == 0:
        return binomial_score(0, 0, params.gamma)
    distinct, inverse = np.unique(contexts, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    summed = np.zeros((distinct.shape[0], weights.shape[1]), dtype=np.float64)
    np.add.at(summed, inverse, weights)
    if per_context:
        summed /= np.bincount(inverse, minlength=distinct.shape[0])[:, None]
    green = green_mask(distinct, key, weights.shape[1], params)
    if exclude is not None and exclude.size:
        rows, cols = np.nonzero(summed)
        excluded = np.isin(context_token_hashes(distinct[rows], cols, key), exclude)
        summed[rows[excluded], cols[excluded]] = 0.0
    return _weighted_score(summed, green, params.gamma, tokens)


def _weighted_score(w: np.ndarray, green: np.ndarray, gamma: float, tokens: int
                    ) -> WatermarkScore:
    """The weighted statistic ``sum w (green - gamma)`` over distinct pairs, its null
    standard deviation, ``z`` and the Chernoff p-value: ``w`` the pairs' weights, ``green``
    (same shape, bool) whether each pair is green."""
    green_weight = float(w[green].sum())
    total = float(w.sum())
    statistic = green_weight - gamma * total
    sd = float(np.sqrt(gamma * (1 - gamma) * np.square(w).sum()))
    z = statistic / sd if sd > 0 else 0.0
    p = chernoff_p_value(statistic, w[w > 0], gamma)
    return WatermarkScore(tokens, round(total), round(green_weight), float(z), p)


def green_mass_test(fed: np.ndarray, probs: np.ndarray, key: str,
                    params: WatermarkParams = DEFAULT_WATERMARK, *,
                    per_context: bool = True) -> WatermarkScore:
    """Reading mode with the whole distribution: ``fed`` (n, T) token ids given to the
    suspect, ``probs`` (n, T, vocab) its next-token probabilities (``probs[:, t]`` follows
    ``fed[:, :t + 1]``). Exact (as a bound) when ``fed`` does not depend on the key.

    ``per_context`` (the default): the suspect's mean distribution after each distinct
    context counts once. A frequent context ("the") would otherwise weigh thousands of
    times, and its green list is one random draw: its noise, not more evidence."""
    fed = np.asarray(fed, dtype=np.int64)
    h = params.context_width
    if fed.ndim != 2 or probs.shape[:2] != fed.shape or fed.shape[1] < h:
        return binomial_score(0, 0, params.gamma)
    windows = np.lib.stride_tricks.sliding_window_view(fed, h, axis=1).reshape(-1, h)
    weights = np.asarray(probs[:, h - 1:, :], dtype=np.float64).reshape(windows.shape[0], -1)
    return weighted_green_score(windows, weights, key, params, tokens=int(windows.shape[0]),
                                per_context=per_context)


def black_box_count_test(outputs: Sequence[np.ndarray], key: str, vocab_size: int,
                         params: WatermarkParams = DEFAULT_WATERMARK, *,
                         prompts: Sequence[np.ndarray] = ()) -> WatermarkScore:
    """Black box, every occurrence counted: the weight of a (context, token) pair is how
    often the suspect's answers hold it; pairs of ``prompts`` are left out.

    Works on the pairs' hashes (equal pairs hash equal), so memory follows the number of
    pairs, not distinct contexts times ``vocab_size``; token ids must be below
    ``vocab_size``."""
    h = params.context_width
    seqs = [np.asarray(o, dtype=np.int64) for o in outputs if np.size(o) > h]
    if not seqs:
        return binomial_score(0, 0, params.gamma)
    tokens = np.concatenate([o[h:] for o in seqs])
    if tokens.min() < 0 or tokens.max() >= vocab_size:
        msg = (f"Token ids of a suspect's answers must be in 0..{vocab_size - 1} (the "
               f"vocabulary). Got ids from {tokens.min()} to {tokens.max()}.")
        raise RuleValidationError(msg)
    hashes = np.concatenate([pair_hashes(o, key, params) for o in seqs])
    exclude = prompt_pairs(prompts, key, params)
    if exclude.size:
        hashes = hashes[~np.isin(hashes, exclude)]
    pairs, counts = np.unique(hashes, return_counts=True)
    return _weighted_score(counts.astype(np.float64), pairs < params.threshold, params.gamma,
                           int(tokens.size))
