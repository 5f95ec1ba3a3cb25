"""The paraphrase knob's rewriter: what it changes, what it keeps, and how its table splits."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from distillguard.corpora import corpus_files, iter_corpus
from distillguard.errors import InputError
from distillguard.sim.attack_content import ATTACK_CORPORA, recurring_lines
from distillguard.sim.paraphrase import (
    STRENGTHS,
    Paraphraser,
    in_code_fence,
    is_code,
    load_vocabulary,
    parse_strength,
)

LONG = 40
_DIGITS = re.compile(r"\d+")

INSTRUCTIONS = (
    "You are asked to come up with a set of 20 diverse task instructions. These task "
    "instructions will be given to a GPT model and we will evaluate the GPT model for "
    "completing the instructions.\n\nHere are the requirements:\n"
    "1. Try not to repeat the verb for each instruction to maximize diversity.\n"
    "2. The language used for the instruction also should be diverse.\n"
    "3. The type of instructions should be diverse and include open-ended generation.\n"
    "4. Make sure the output is less than 100 words.")
CODE = ("def hill_climbing(initial_board):\n    current = initial_board\n"
        "    while current.has_successors():\n        return current")


def test_strengths_are_named_or_numbers_in_the_unit_interval() -> None:
    assert parse_strength(None) == STRENGTHS["medium"]
    assert parse_strength("light") < parse_strength("medium") < parse_strength("heavy")
    assert parse_strength("0.45") == 0.45 and parse_strength(1) == 1.0
    for bad in ("strong", 0, -0.2, 1.5, "nan"):
        with pytest.raises(InputError, match="paraphrase strength"):
            parse_strength(bad)


def test_the_split_sides_write_disjoint_halves_of_every_set() -> None:
    train, test, both = (load_vocabulary(side) for side in ("train", "test", None))
    for t, u, a in zip(train.written, test.written, both.written, strict=True):
        assert not set(t) & set(u)
        assert set(t) | set(u) == set(a)
    for name in ("openings", "fillers", "markers"):
        t, u, a = (getattr(v, name) for v in (train, test, both))
        assert not set(t) & set(u) and set(t) | set(u) == set(a)
        assert t and u, name
    with pytest.raises(InputError, match="side"):
        load_vocabulary("validation")


def _paraphraser(strength: float = STRENGTHS["medium"], side: str | None = "test") -> Paraphraser:
    lines = frozenset(_DIGITS.sub("0", line) for line in INSTRUCTIONS.split("\n"))
    return Paraphraser(load_vocabulary(side), strength, lines)


def test_the_same_seed_gives_the_same_wording_and_seeds_differ() -> None:
    p = _paraphraser()
    assert p.paraphrase(INSTRUCTIONS, 7) == p.paraphrase(INSTRUCTIONS, 7)
    variants = {p.paraphrase(INSTRUCTIONS, seed) for seed in range(50)}
    assert len(variants) == 50
    assert INSTRUCTIONS not in variants


def test_code_tags_and_braces_stay_as_they_are() -> None:
    p = _paraphraser(STRENGTHS["heavy"])
    text = (f"{INSTRUCTIONS}\n{CODE}\n<text 1> Answer the question for each example.\n"
            "Your input should be a json (args json schema): {} and never the {placeholder}.")
    for seed in range(30):
        out = p.paraphrase(text, seed)
        assert CODE in out
        assert "<text 1>" in out and "{}" in out and "{placeholder}" in out
    assert is_code("    current = initial_board") and is_code('{"model": "m"},')
    assert not is_code("You are AutoGPT, you can use many tools(functions) to do the task.")


def test_a_request_opens_otherwise_and_lists_get_renumbered_sometimes() -> None:
    p = _paraphraser(STRENGTHS["heavy"])
    outs = [p.paraphrase(INSTRUCTIONS, seed) for seed in range(200)]
    assert sum(not o.startswith(INSTRUCTIONS[:20]) for o in outs) > 50
    assert any("1)" in o for o in outs)
    system = p.paraphrase(INSTRUCTIONS, 3, system=True)
    assert system.split()[0] in ("You", "You're")   # no opening sentence on a system prompt


def _template_prose(name: str, items: list[dict]) -> set[str]:
    lines = recurring_lines([i["prompt"] for i in items])
    return {line for line in lines if len(line.strip()) >= LONG and not is_code(line)}


@pytest.mark.parametrize("name", sorted(ATTACK_CORPORA))
def test_at_the_default_strength_no_long_template_line_goes_out_verbatim(
        name: str, shared_corpora: Path) -> None:
    items = list(iter_corpus(corpus_files(shared_corpora)[name]))
    template = _template_prose(name, items)
    systems = {line for i in items for line in (i.get("system") or "").split("\n")
               if len(line.strip()) >= LONG and not is_code(line)}
    p = Paraphraser(load_vocabulary("test"), STRENGTHS["medium"],
                    frozenset(recurring_lines([i["prompt"] for i in items])))
    kept = sent = 0
    for k, item in enumerate(items[::max(1, len(items) // 120)]):
        lines = item["prompt"].split("\n")
        prose = {line for line, fenced in zip(lines, in_code_fence(lines), strict=True)
                 if not fenced and _DIGITS.sub("0", line) in template} | systems
        for seed in range(2):
            out = p.paraphrase(item["prompt"], 1000 * k + seed, key=k).split("\n")
            if item.get("system"):
                out += p.paraphrase(item["system"], seed, system=True).split("\n")
            kept += any(line in prose for line in out)
            sent += 1
    assert kept == 0, f"{kept} of {sent} {name} requests kept a template line"


def test_strength_sets_how_much_of_a_template_changes() -> None:
    lines = [line for line in INSTRUCTIONS.split("\n") if len(line) >= LONG]

    def kept(strength: float) -> float:
        p = _paraphraser(strength)
        outs = [p.paraphrase(INSTRUCTIONS, seed) for seed in range(100)]
        return sum(line in out for out in outs for line in lines) / (len(lines) * len(outs))

    light, medium, heavy = (kept(STRENGTHS[k]) for k in ("light", "medium", "heavy"))
    assert light > medium >= heavy
    assert light > 0.05 and medium == 0


def test_train_and_test_sides_reword_with_their_own_words() -> None:
    """The wording one side writes carries less to the other side than to itself."""
    train, test = _paraphraser(side="train"), _paraphraser(side="test")

    def trigrams(text: str) -> set[tuple[str, ...]]:
        words = re.findall(r"[a-z']+", text.lower())
        return set(zip(words, words[1:], words[2:], strict=False))

    original = trigrams(INSTRUCTIONS)

    def new(p: Paraphraser, seeds: range) -> set[tuple[str, ...]]:
        return {t for seed in seeds for t in trigrams(p.paraphrase(INSTRUCTIONS, seed))} \
            - original

    a, b, c = new(train, range(100)), new(train, range(100, 200)), new(test, range(100))
    assert len(a & c) < 0.5 * len(a & b)
