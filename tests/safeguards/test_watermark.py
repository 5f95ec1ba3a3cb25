from __future__ import annotations

import numpy as np
import pytest

from distillguard.errors import RuleValidationError
from distillguard.safeguards import (
    WatermarkParams,
    bias_logits,
    derive_key,
    green_mask,
    key_seed,
    pair_hashes,
)


def test_green_lists_hold_gamma_of_the_vocabulary_and_differ_by_context_and_key() -> None:
    mask = green_mask(np.arange(200)[:, None], "k", 4096)
    assert mask.shape == (200, 4096)
    assert abs(mask.mean() - 0.25) < 0.005
    assert (mask[0] != mask[1]).mean() > 0.3
    other = green_mask(np.arange(200)[:, None], "other-key", 4096)
    assert abs((mask & other).mean() - 0.25 * 0.25) < 0.005  # independent lists


def test_green_lists_are_deterministic() -> None:
    a = green_mask(np.array([[7], [9]]), "k", 512)
    assert (a == green_mask(np.array([[7], [9]]), "k", 512)).all()
    assert key_seed("k") == key_seed("k") != key_seed("k2")


def test_wider_context_uses_the_last_tokens() -> None:
    params = WatermarkParams(context_width=2)
    a = green_mask(np.array([[1, 2, 3]]), "k", 256, params)
    b = green_mask(np.array([[9, 2, 3]]), "k", 256, params)
    c = green_mask(np.array([[2, 4]]), "k", 256, params)
    assert (a == b).all() and (a != c).any()


def test_bias_adds_delta_to_green_tokens_only() -> None:
    logits = np.zeros((3, 300))
    contexts = np.array([[1], [2], [3]])
    biased = bias_logits(logits, contexts, "k", WatermarkParams(delta=1.5))
    mask = green_mask(contexts, "k", 300)
    assert np.allclose(biased[mask], 1.5) and np.allclose(biased[~mask], 0.0)


def test_pair_hashes_repeat_with_the_pair() -> None:
    h = pair_hashes(np.array([5, 6, 5, 6, 5, 7]), "k")
    assert h.size == 5
    assert h[0] == h[2] and h[1] == h[3] and h[0] != h[4]
    assert pair_hashes(np.array([5]), "k").size == 0
    green = h < WatermarkParams().threshold
    mask = green_mask(np.array([[5]]), "k", 10)[0]
    assert green[0] == mask[6] and green[4] == mask[7]


def test_derived_keys_differ_per_group_and_depend_on_the_secret() -> None:
    assert derive_key("s", "C1") != derive_key("s", "C2")
    assert derive_key("s", "C1") != derive_key("t", "C1")
    assert derive_key("s", "C1") == derive_key("s", "C1")


@pytest.mark.parametrize("kwargs", [{"gamma": 0.0}, {"gamma": 1.0}, {"delta": -1.0},
                                    {"context_width": 0}])
def test_bad_parameters_are_refused_with_the_field_named(kwargs: dict[str, float]) -> None:
    name = next(iter(kwargs))
    with pytest.raises(RuleValidationError, match=name):
        WatermarkParams(**kwargs)  # type: ignore[arg-type]
