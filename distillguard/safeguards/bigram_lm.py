"""A bigram language model in numpy: a teacher and students that need no torch and fit
their training data exactly (counts from real token ids, sampling with or without the
watermark's logit bias). The tests use it, and the radioactivity benchmark uses it to show
what the tests can detect when a student learns its data fully (``bigram_radioactivity``:
the whole experiment, teacher to verdicts, in seconds)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from distillguard.safeguards.radioactivity import black_box_test
from distillguard.safeguards.watermark import WatermarkParams, green_mask

__all__ = ["BigramExperiment", "bigram_counts", "bigram_radioactivity", "log_probs", "sample"]


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


@dataclass(frozen=True)
class BigramExperiment:
    """Sizes of ``bigram_radioactivity``. ``seeds`` maps a watermarked share ``rho`` to
    how many students get it; each student asks ``probes`` prompts (one token each: a
    bigram model's whole context) for ``probe_tokens`` tokens, as a black box."""

    seeds: tuple[tuple[float, int], ...] = ((0.0, 20), (0.01, 10), (0.05, 10), (0.10, 10))
    student_tokens: int = 300_000
    harvest_answers: int = 1024
    answer_tokens: int = 200
    probes: int = 2048
    probe_tokens: int = 128


def bigram_radioactivity(teacher_docs: Sequence[np.ndarray], student_docs: Sequence[np.ndarray],
                         key: str, vocab: int, params: WatermarkParams | None = None,
                         sizes: BigramExperiment | None = None) -> list[dict[str, float]]:
    """Radioactivity end to end with bigram models: a teacher counted on ``teacher_docs``
    answers with the watermark under ``key``; each student is counted on
    ``student_tokens`` tokens, a share ``rho`` of them a random stretch of those answers
    and the rest its own text (``student_docs`` in a random order per seed); then the
    black-box test on what it answers. One row per student: rho, seed, z, p_value."""
    params = params or WatermarkParams()
    sizes = sizes or BigramExperiment()
    rng = np.random.default_rng(0)
    teacher = log_probs(bigram_counts(list(teacher_docs), vocab))
    harvest = np.concatenate(sample(teacher, rng.integers(1, vocab, sizes.harvest_answers),
                                    sizes.answer_tokens, rng, key=key, params=params))
    rows = []
    for rho, seeds in sizes.seeds:
        n_marked = int(rho * sizes.student_tokens)
        if n_marked > harvest.size:
            msg = f"rho {rho} needs {n_marked} watermarked tokens; the harvest has {harvest.size}"
            raise ValueError(msg)
        for seed in range(seeds):
            r = np.random.default_rng(100 + seed)
            own = np.concatenate([student_docs[i] for i in r.permutation(len(student_docs))])
            start = int(r.integers(0, harvest.size - n_marked + 1))
            student = log_probs(bigram_counts(
                [own[: sizes.student_tokens - n_marked], harvest[start:start + n_marked]], vocab))
            answers = sample(student, r.integers(1, vocab, sizes.probes), sizes.probe_tokens, r)
            score = black_box_test(answers, key, params)
            rows.append({"rho": rho, "seed": seed, "z": score.z, "p_value": score.p_value,
                         "scored": score.scored})
    return rows
