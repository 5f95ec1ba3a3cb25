from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm
from tokenizers import Tokenizer

from distillguard.safeguards import (
    DEFAULT_ALPHA,
    WatermarkParams,
    binomial_score,
    score_ids,
    score_many,
    score_pooled,
    score_texts,
)
from distillguard.safeguards.bigram_lm import bigram_counts, log_probs, sample


def test_alpha_is_the_one_sided_tail_at_z_4() -> None:
    assert pytest.approx(norm.sf(4.0)) == DEFAULT_ALPHA


def test_binomial_score_is_exact_and_z_is_the_normal_approximation() -> None:
    s = binomial_score(green=8, scored=8, gamma=0.25)
    assert s.p_value == pytest.approx(0.25**8)
    assert s.z == pytest.approx((8 - 2) / np.sqrt(8 * 0.25 * 0.75))
    empty = binomial_score(0, 0, 0.25)
    assert empty.p_value == 1.0 and empty.z == 0.0


def test_a_repeated_phrase_is_scored_once() -> None:
    phrase = np.array([11, 12, 13, 14, 15, 16])
    once, fifty = score_ids(phrase, "k"), score_ids(np.tile(phrase, 50), "k")
    # the repeats add only the one pair joining a copy to the next (16 -> 11)
    assert fifty.scored == once.scored + 1
    assert fifty.tokens == 300


def test_scoring_many_matches_scoring_each_alone() -> None:
    rng = np.random.default_rng(0)
    seqs = [rng.integers(0, 500, n) for n in (0, 1, 2, 17, 300, 40)]
    many = score_many(seqs, "k")
    assert many == [score_ids(s, "k") for s in seqs]
    assert many[0].scored == 0 and many[1].scored == 0 and many[2].scored == 1


def test_pooled_score_dedups_across_texts_and_drops_excluded_pairs() -> None:
    a = np.array([1, 2, 3, 4])
    pooled = score_pooled([a, a, a], "k")
    assert pooled.scored == 3 and pooled.tokens == 12
    from distillguard.safeguards import pair_hashes

    excluded = score_pooled([a], "k", exclude=pair_hashes(np.array([1, 2]), "k"))
    assert excluded.scored == 2


def test_watermarked_samples_are_detected_and_plain_ones_are_not(
        heldout_ids: list[np.ndarray]) -> None:
    logp = log_probs(bigram_counts(heldout_ids, 2048))
    rng = np.random.default_rng(1)
    starts = rng.integers(1, 2048, 200)
    marked = score_many(sample(logp, starts, 200, rng, key="k"), "k")
    plain = score_many(sample(logp, starts, 200, rng), "k")
    assert np.mean([s.z > 4 for s in marked]) >= 0.99
    assert sum(s.watermarked() for s in plain) <= 1
    assert sum(s.watermarked() for s in score_many(sample(logp, starts, 200, rng, key="k"),
                                                   "another-key")) <= 1


def test_unwatermarked_corpus_text_is_rarely_flagged(heldout_ids: list[np.ndarray]) -> None:
    """About 2,000 held-out texts: at alpha = 3.2e-5, 0.06 false positives are expected."""
    scores = score_many(heldout_ids, "corpus-check-key")
    assert len(scores) >= 2000
    assert sum(s.watermarked() for s in scores) <= 1
    assert np.mean([s.p_value < 0.01 for s in scores]) < 0.02
    assert abs(np.mean([s.z for s in scores])) < 0.5


def test_texts_are_scored_through_the_tokenizer(tokenizer: Tokenizer) -> None:
    s = score_texts(["", "hello world, this is a test of the detector"], tokenizer, "k")
    assert s[0].tokens == 0 and s[0].p_value == 1.0
    assert s[1].tokens > 5


def test_context_width_two_detects_its_own_watermark(heldout_ids: list[np.ndarray]) -> None:
    params = WatermarkParams(context_width=2)
    logp = log_probs(bigram_counts(heldout_ids, 2048))
    rng = np.random.default_rng(2)
    # the bigram sampler biases by the last token only; score a width-1 mark with width 1
    marked = sample(logp, rng.integers(1, 2048, 50), 200, rng, key="k")
    assert np.median([s.z for s in score_many(marked, "k")]) > 4
    assert abs(np.median([s.z for s in score_many(marked, "k", params)])) < 2
