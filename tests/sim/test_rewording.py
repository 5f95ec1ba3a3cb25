from __future__ import annotations

import numpy as np

from distillguard.sim.rewording import reword, skeleton_lines

HEADER = ["You are asked to come up with a set of diverse task instructions.",
          "Try not to repeat the verb for each instruction to maximize diversity.",
          "The language used for the instruction also should be diverse."]


def _items(n: int) -> list[tuple[str, str | None]]:
    return [("\n".join([*HEADER, f"1. Instruction: task number {i} about topic {i * 7}"]),
             "You are a helpful assistant who answers carefully.") for i in range(n)]


def test_skeleton_is_the_lines_most_items_share() -> None:
    assert skeleton_lines([p for p, _ in _items(40)]) == set(HEADER)


def test_styles_split_the_items_and_only_drop_or_move_corpus_text() -> None:
    items = _items(64)
    styles = reword(items, 4, np.random.default_rng(0))
    used = [i for style in styles for _, i in style]
    assert sorted(used) == list(range(64))  # each item re-worded once, by one style
    corpus_lines = {line for p, s in items for line in [*p.split("\n"), s]} | {""}
    for style in styles:
        for (prompt, system), i in style:
            assert set(prompt.split("\n")) <= corpus_lines
            assert system in (None, items[i][1])
    variants = {"\n".join(line for line in p.split("\n") if line in HEADER) + str(s)
                for style in styles for (p, s), _ in style[:1]}
    assert len(variants) > 1  # the styles differ from one another


def test_a_corpus_smaller_than_the_styles_still_feeds_every_style() -> None:
    styles = reword(_items(3), 8, np.random.default_rng(1))
    assert all(style for style in styles)
