from __future__ import annotations

import random

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from distillguard.logs.schema import MESSAGE_TYPE
from distillguard.signals import exchange_signals, hash_strings, keep_probability, sample_mask
from distillguard.signals.lexicon import load_lexicon
from distillguard.signals.techniques import technique_scores
from distillguard.signals.template_units import (
    _fold_and_split_by_regex,
    _fold_and_split_compiled,
    template_units,
)
from distillguard.signals.text import last_message_text, request_text, window
from distillguard.verdict.policy import load_policy


def _batch(prompts: list[str], systems: list[str | None] | None = None,
           tools: list[list[str] | None] | None = None) -> pa.Table:
    n = len(prompts)
    return pa.table({
        "messages": pa.array([[{"role": "user", "content": p}] for p in prompts],
                             pa.list_(MESSAGE_TYPE)),
        "system": pa.array(systems or [None] * n, pa.string()),
        "tools": pa.array(tools or [None] * n, pa.list_(pa.string())),
        "has_image": pa.array([None] * n, pa.bool_()),
    })


def test_last_message_is_the_new_turn_even_after_history() -> None:
    batch = pa.table({"messages": pa.array([
        [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
         {"role": "user", "content": "c"}],
        [{"role": "user", "content": "only"}]], pa.list_(MESSAGE_TYPE))})
    assert last_message_text(batch).to_pylist() == ["c", "only"]


def test_window_keeps_head_and_tail_of_long_text() -> None:
    text = pa.array(["x" * 10 + "MIDDLE" + "y" * 10, "short"])
    assert window(text, 5, 5).to_pylist() == ["xxxxx\nyyyyy", "short"]


def test_window_cuts_long_texts_in_place_and_keeps_nulls() -> None:
    text = pa.chunked_array([["short", None], ["é" * 12 + "z" * 12, "exactlyten"]])
    assert window(text, 5, 5).to_pylist() == ["short", None, "ééééé\nzzzzz", "exactlyten"]


def test_techniques_recognise_what_a_request_asks_for() -> None:
    batch = _batch([
        "Rate the following two responses on a scale of 1 to 10 and say which is better.",
        "Solve this and explain your reasoning step by step: 12 * 7 + 3.",
        "Generate 20 diverse questions that a biology student might ask.",
        "What should I cook tonight with leftover rice?",
    ])
    scores = technique_scores(batch, request_text(batch), lexicon=load_lexicon())
    assert scores["grading"].tolist() == [1.0, 0.0, 0.0, 0.0]
    assert scores["cot_elicitation"][1] >= 0.5 and scores["cot_elicitation"][3] == 0.0
    assert scores["data_generation"].tolist() == [0.0, 0.0, 1.0, 0.0]
    assert not any(s[3] for s in scores.values())


def test_tools_field_makes_a_request_tool_use() -> None:
    batch = _batch(["book a flight", "hello"], tools=[["search_flights"], None])
    scores = technique_scores(batch, request_text(batch), lexicon=load_lexicon())
    assert scores["tool_use"].tolist() == [1.0, 0.0]


def test_one_template_with_different_fill_ins_shares_its_units() -> None:
    wrapper = "You are a careful annotator who labels customer reviews for our dataset."
    batch = _batch([f"{wrapper}\nReview: the {item} broke after {n} days." for item, n in
                    (("kettle", 3), ("lamp", 40), ("phone", 7))])
    units = template_units(batch)
    per_request = [set(u) for u in units.units.to_pylist()]
    assert per_request[0] & per_request[1] & per_request[2]
    assert len(set(units.text_hash.tolist())) == 3


def test_short_lines_are_not_units_and_repeats_hash_alike() -> None:
    batch = _batch(["Options:\n- yes\n- no", "Options:\n- yes\n- no"])
    units = template_units(batch)
    assert units.units.to_pylist() == [[], []]
    assert units.text_hash[0] == units.text_hash[1]


def test_digits_are_folded_so_numbered_fill_ins_share_a_unit() -> None:
    batch = _batch(["Write exactly 12 new quiz questions about the history of Rome.",
                    "Write exactly 40 new quiz questions about the history of Rome."])
    a, b = template_units(batch).units.to_pylist()
    assert a == b and a


def test_a_request_lists_each_unit_once_in_the_order_first_seen() -> None:
    line = "Grade the answer below on a scale of one to ten, with reasons."
    other = "Then rewrite the answer so that it would earn a perfect score."
    sketch = load_policy().sketch
    repeated, single = template_units(
        _batch([f"{line}\n{other}\n{line}\n", f"{line}\n{other}\n"]), sketch=sketch
    ).units.to_pylist()
    assert len(repeated) == len(set(repeated))
    assert repeated == single


def test_compiled_fold_and_split_equals_the_regexes() -> None:
    """The byte-level splitter must cut exactly where RE2 does: unit hashes are compared
    across scans, engines and the gateway."""
    alphabet = [*"abcXYZ 0123456789.!?;\n\t\r\f\v", "é", "٣", "\u00a0", "\u2003", "Σ", "İ"]
    rng = random.Random(7)
    for trial in range(200):
        texts = [None if rng.random() < 0.1 else
                 "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
                 for _ in range(rng.randint(0, 30))]
        lower = pc.utf8_lower(pa.array(texts, pa.string()))
        if trial % 3 == 0 and len(lower) > 2:
            lower = lower.slice(1)  # an array that starts inside its buffers
        expected, expected_pieces, expected_parents = _fold_and_split_by_regex(lower)
        normalized, pieces, parents = _fold_and_split_compiled(lower)
        normalized.validate(full=True)
        pieces.validate(full=True)
        assert normalized.equals(expected), texts
        assert pieces.equals(expected_pieces), texts
        assert np.array_equal(parents, expected_parents), texts


def test_exchange_signals_has_one_row_per_exchange() -> None:
    batch = _batch(["hi", "Rank the models' answers from best to worst.", ""])
    out = exchange_signals(batch)
    assert out.num_rows == 3
    assert out.column("prompt_chars").to_pylist() == [2, 44, 0]


def test_hashes_are_stable_across_calls() -> None:
    a = hash_strings(pa.array(["alpha", "beta"]))
    b = hash_strings(pa.array(["beta", "alpha"]))
    assert a[0] == b[1] and a[1] == b[0]


def test_sample_is_deterministic_and_near_its_rate() -> None:
    ids = pa.array([f"req-{i}" for i in range(20_000)])
    rate = keep_probability(np.array([10_000] * 10_000 + [500] * 10_000), 1_000)
    first = sample_mask(hash_strings(ids), rate)
    again = sample_mask(hash_strings(ids), rate)
    assert np.array_equal(first, again)
    assert 800 < first[:10_000].sum() < 1_200
    assert first[10_000:].all()


def test_accounts_without_a_count_are_sampled_whole() -> None:
    assert keep_probability(np.array([0, -1, 1, 2_000]), 1_000).tolist() == [1.0, 1.0, 1.0, 0.5]


def test_account_counts_look_up_each_rows_account() -> None:
    from distillguard.signals.sampling import AccountCounts

    counts = AccountCounts(pa.array(["b", "a", "c"]), np.array([20, 10, 30]))
    rows = pa.chunked_array([["a", "c", None], ["unknown", "b", "a"]])
    assert counts.of(rows).tolist() == [10, 30, 0, 0, 20, 10]
    assert AccountCounts(pa.array([], pa.string()), np.array([])).of(rows).tolist() == [0] * 6
