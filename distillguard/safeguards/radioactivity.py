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

Both return a ``WatermarkScore``; its ``p_value`` is the evidence.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from distillguard.safeguards.detect import WatermarkScore, binomial_score, score_pooled
from distillguard.safeguards.watermark import (
    DEFAULT_WATERMARK,
    WatermarkParams,
    context_token_hashes,
    pair_hashes,
)

__all__ = ["black_box_test", "open_model_test", "prompt_pairs"]


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
