"""Radioactivity with numpy bigram models: a student that learned from watermarked answers
leans green under the key; one that did not gives a uniform p-value."""

from __future__ import annotations

import numpy as np
import pytest
from tokenizers import Tokenizer

from distillguard.safeguards import (
    answer_ids,
    black_box_count_test,
    black_box_test,
    chernoff_p_value,
    green_mass_test,
    open_model_test,
)
from distillguard.safeguards.bigram_lm import (
    BigramExperiment,
    bigram_counts,
    bigram_radioactivity,
    log_probs,
    sample,
)
from tests.safeguards.conftest import SHARED

VOCAB = 2048


@pytest.fixture(scope="module")
def bigrams(heldout_ids: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The teacher's log-probabilities (first half of the held-out texts) and the
    attacker's own bigram counts (second half)."""
    half = len(heldout_ids) // 2
    return log_probs(bigram_counts(heldout_ids[:half], VOCAB)), bigram_counts(heldout_ids[half:],
                                                                              VOCAB)


def _student(bigrams: tuple[np.ndarray, np.ndarray], rho: float, seed: int, key: str
             ) -> tuple[np.ndarray, np.random.Generator]:
    """A student trained on its own text plus a share ``rho`` of watermarked answers."""
    teacher, own = bigrams
    rng = np.random.default_rng(seed)
    if rho == 0:
        return log_probs(own), rng
    harvest = bigram_counts(sample(teacher, rng.integers(1, VOCAB, 300), 200, rng, key=key), VOCAB)
    return log_probs(own + rho / (1 - rho) * own.sum() / harvest.sum() * harvest), rng


def test_student_of_watermarked_answers_is_detected(bigrams: tuple[np.ndarray, np.ndarray]
                                                    ) -> None:
    student, rng = _student(bigrams, 0.3, seed=0, key="campaign-key")
    prompts = rng.integers(1, VOCAB, 200)
    outputs = sample(student, prompts, 150, rng)
    assert black_box_test(outputs, "campaign-key", prompts=[prompts]).p_value < 1e-5
    assert black_box_test(outputs, "unrelated-key").p_value > 1e-3


def test_clean_students_are_not_accused(bigrams: tuple[np.ndarray, np.ndarray]) -> None:
    student, rng = _student(bigrams, 0.0, seed=1, key="k")
    outputs = sample(student, rng.integers(1, VOCAB, 200), 150, rng)
    p_values = [black_box_test(outputs, f"key-{s}").p_value for s in range(10)]
    assert sum(p < 0.01 for p in p_values) <= 1


def test_prompt_pairs_are_not_scored() -> None:
    prompt = np.arange(1, 60)
    echoed = [np.arange(1, 60)]  # a model that repeats its prompt
    assert black_box_test(echoed, "k", prompts=[prompt]).scored == 0


def test_reading_mode_scores_each_context_prediction_once(
        heldout_ids: list[np.ndarray], bigrams: tuple[np.ndarray, np.ndarray]) -> None:
    student, _ = _student(bigrams, 0.3, seed=2, key="campaign-key")
    argmax = student.argmax(axis=1)
    fed = np.stack([ids[:64] for ids in heldout_ids if ids.size >= 64][:200])
    predicted = argmax[fed]
    marked = open_model_test(fed, predicted, "campaign-key")
    assert marked.scored <= np.unique(fed).size
    assert marked.p_value < 1e-3
    assert open_model_test(fed, predicted, "unrelated-key").p_value > 1e-3


def test_reading_mode_accepts_top_k_and_refuses_mismatched_shapes() -> None:
    fed = np.array([[1, 2, 3, 4]])
    top3 = np.array([[[5, 6, 7]] * 4])
    assert open_model_test(fed, top3, "k").tokens == 12
    assert open_model_test(fed, np.zeros((2, 4), dtype=int), "k").scored == 0


def test_chernoff_bound_is_never_below_the_exact_tail() -> None:
    weights = np.array([0.5, 1.0, 1.5, 2.0, 3.0, 0.25])
    outcomes = np.array(np.meshgrid(*[[0, 1]] * weights.size)).reshape(weights.size, -1).T
    gamma = 0.25
    probability = np.prod(np.where(outcomes == 1, gamma, 1 - gamma), axis=1)
    sums = outcomes @ weights - gamma * weights.sum()
    for s in np.unique(sums):
        exact = probability[sums >= s - 1e-12].sum()
        assert chernoff_p_value(float(s), weights, gamma) >= exact - 1e-12
    assert chernoff_p_value(-1.0, weights, gamma) == 1.0
    assert chernoff_p_value(0.0, np.array([]), gamma) == 1.0


def test_weighted_tests_do_not_accuse_a_model_that_never_saw_the_key() -> None:
    """Weights that do not depend on the key: p-values below 0.01 at most 1 % of the time."""
    rng = np.random.default_rng(3)
    fed = rng.integers(1, 300, (8, 32))
    probs = rng.dirichlet(np.full(300, 0.05), size=(8, 32))
    p_values = [green_mass_test(fed, probs, f"key-{k}").p_value for k in range(150)]
    assert sum(p < 0.01 for p in p_values) <= 2
    outputs = [rng.integers(1, 300, 100) for _ in range(20)]
    p_values = [black_box_count_test(outputs, f"key-{k}", 300).p_value for k in range(150)]
    assert sum(p < 0.01 for p in p_values) <= 2


def test_weighted_tests_find_a_student_of_watermarked_answers(
        heldout_ids: list[np.ndarray], bigrams: tuple[np.ndarray, np.ndarray]) -> None:
    student, rng = _student(bigrams, 0.3, seed=4, key="campaign-key")
    fed = np.stack([ids[:64] for ids in heldout_ids if ids.size >= 64][:100])
    probs = np.exp(student)[fed]
    for per_context in (True, False):
        marked = green_mass_test(fed, probs, "campaign-key", per_context=per_context)
        assert marked.p_value < 1e-5 and marked.z > 4
        assert green_mass_test(fed, probs, "unrelated-key", per_context=per_context
                               ).p_value > 1e-3
    prompts = rng.integers(1, VOCAB, 200)
    outputs = sample(student, prompts, 150, rng)
    assert black_box_count_test(outputs, "campaign-key", VOCAB, prompts=[prompts]).p_value < 1e-5
    assert black_box_count_test(outputs, "unrelated-key", VOCAB).p_value > 1e-3


def test_the_counted_test_refuses_ids_outside_the_vocabulary() -> None:
    from distillguard.errors import RuleValidationError

    with pytest.raises(RuleValidationError, match="vocabulary"):
        black_box_count_test([np.array([1, 2, 300])], "k", 300)
    with pytest.raises(RuleValidationError, match="vocabulary"):
        black_box_count_test([np.array([1, -2, 3])], "k", 300)


def test_the_counted_test_weighs_each_pair_by_its_occurrences() -> None:
    """Ten copies of one answer: the same distinct pairs, each weighing ten, so ten times
    the statistic's total and green weight."""
    answer = np.arange(1, 41)
    once = black_box_count_test([answer], "k", 50)
    ten = black_box_count_test([answer] * 10, "k", 50)
    assert (ten.scored, ten.green) == (10 * once.scored, 10 * once.green)
    assert ten.tokens == 10 * once.tokens


@pytest.mark.slow
def test_bigram_radioactivity_end_to_end(tokenizer: Tokenizer) -> None:
    """The experiment of the bars with bigram teacher and students (corpora text, the
    watermark, students on 0 and 5 % mixes, the black-box test): the 5 % students are named
    at p < 1e-5, the clean ones are not accused."""
    teacher, student = (answer_ids(SHARED / "corpora", tokenizer, split, max_chars=1500)
                        for split in ("teacher", "student"))
    rows = bigram_radioactivity(teacher, student, "campaign-key", VOCAB,
                                sizes=BigramExperiment(seeds=((0.0, 5), (0.05, 3))))
    marked = [r["p_value"] for r in rows if r["rho"] == 0.05]
    clean = [r["p_value"] for r in rows if r["rho"] == 0.0]
    assert len(marked) == 3 and max(marked) < 1e-5
    assert len(clean) == 5 and sum(p <= 0.01 for p in clean) <= 1
