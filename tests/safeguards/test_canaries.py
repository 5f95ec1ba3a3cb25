from __future__ import annotations

import hashlib
import re

import pytest

from distillguard.safeguards import (
    add_decoy_tool,
    append_signature,
    canary_check,
    canary_exposure,
    canary_for,
    canary_queries,
    decoy_tool,
    normalize_text,
    should_mark,
)

GROUPS = [f"C{i}" for i in range(1, 9)]


def test_canaries_are_keyed_per_group_and_stable() -> None:
    a, b = canary_for("secret", "C1"), canary_for("secret", "C2")
    assert a == canary_for("secret", "C1")
    assert a.core != b.core and a.tool_name != b.tool_name
    assert canary_for("other", "C1").tool_name != a.tool_name
    assert re.fullmatch(r"[a-z]+_[a-z]+_[a-z]+_[0-9a-f]{4}", a.tool_name)
    assert a.phrase.endswith(".") and a.core.strip() in normalize_text(a.phrase)


def test_signature_goes_on_its_own_closing_line() -> None:
    c = canary_for("secret", "C1")
    assert append_signature("The answer is 4.  \n", c) == f"The answer is 4.\n\n{c.phrase}"
    assert append_signature("", c) == ""


def test_should_mark_takes_the_share_and_is_stable_per_request() -> None:
    marks = [should_mark("secret", f"req-{i}", 0.05) for i in range(20_000)]
    assert 0.04 < sum(marks) / len(marks) < 0.06
    assert should_mark("secret", "req-7", 0.05) == marks[7]
    assert not any(should_mark("secret", f"req-{i}", 0.0) for i in range(100))


def test_decoy_tool_in_each_api_shape_is_added_only_beside_other_tools() -> None:
    c = canary_for("secret", "C1")
    openai = decoy_tool(c, "openai")
    assert openai["type"] == "function" and openai["function"]["name"] == c.tool_name
    anthropic = decoy_tool(c, "anthropic")
    assert anthropic["name"] == c.tool_name and "input_schema" in anthropic
    body = {"tools": [{"type": "function", "function": {"name": "get_weather"}}]}
    assert add_decoy_tool(body, "openai", c)
    assert [t["function"]["name"] for t in body["tools"]] == ["get_weather", c.tool_name]
    for without in ({}, {"tools": []}, {"tools": "nope"}):
        assert not add_decoy_tool(without, "openai", c)


def test_check_names_the_group_that_leaked() -> None:
    canaries = [canary_for("secret", g) for g in GROUPS]
    leaked = canaries[2]
    outputs = ["Plain answer about cooking rice."] * 50
    outputs += [f"Sure, here it is. {leaked.phrase.upper()}",
                f"...{leaked.core.strip()}!",
                f'{{"tool": "{leaked.tool_name}", "arguments": {{"topic": "x"}}}}']
    report = canary_check(outputs, canaries)
    assert report.named == ("C3",)
    assert report.hits[0].phrase_hits == 2 and report.hits[0].tool_hits == 1
    assert report.ambiguous == ()


def test_a_single_hit_is_not_enough_by_default() -> None:
    canaries = [canary_for("secret", g) for g in GROUPS]
    report = canary_check([canaries[0].phrase], canaries)
    assert report.named == () and report.hits[0].group == "C1"
    assert canary_check([canaries[0].phrase], canaries, min_hits=1).named == ("C1",)


def test_no_canary_of_a_thousand_groups_occurs_in_real_text(heldout_texts: list[str]) -> None:
    canaries = [canary_for("secret", f"group-{i}") for i in range(1000)]
    report = canary_check(heldout_texts, canaries, min_hits=1)
    assert report.hits == ()


@pytest.mark.parametrize("text", ["", "   ", "\n\n"])
def test_empty_outputs_name_nobody(text: str) -> None:
    assert canary_check([text], [canary_for("s", "C1")]).named == ()


def test_every_phrase_opens_with_one_of_the_queries() -> None:
    queries = canary_queries()
    assert len(queries) == 8
    for g in GROUPS:
        assert canary_for("secret", g).phrase.startswith(queries)


def test_exposure_ranks_the_memorized_phrase_first_and_is_uniform_otherwise() -> None:
    canaries = [canary_for("s", f"G{i}") for i in range(8)]
    leaked = canaries[5].phrase

    def memorized(opener: str, continuations: list[str]) -> list[float]:
        """A suspect that learned group G5's phrase; every other phrase scores by length."""
        return [0.0 if opener + c == leaked else -len(c) / 3 for c in continuations]

    report = canary_exposure(memorized, canaries, candidates=199)
    named = [e.group for e in report if e.p_value <= 0.05 / len(canaries)]
    assert named == ["G5"] and report[5].rank == 1 and report[5].p_value == 1 / 200

    def unrelated(opener: str, continuations: list[str]) -> list[float]:
        return [float(int(hashlib.sha256((opener + c).encode()).hexdigest()[:8], 16))
                for c in continuations]

    ranks = [e.rank for e in canary_exposure(unrelated, canaries, candidates=199)]
    assert all(1 <= r <= 200 for r in ranks) and len(set(ranks)) > 1


def test_a_reference_model_takes_away_how_natural_a_phrase_is() -> None:
    """The suspect learned G3's phrase a little (+5 nats), but how natural a phrase is
    anyway spreads scores far more: alone it ranks low; against a reference that never saw
    it, first."""
    canaries = [canary_for("s", f"G{i}") for i in range(8)]
    leaked = canaries[3].phrase

    def natural(opener: str, continuations: list[str]) -> list[float]:
        return [-(int(hashlib.sha256(c.encode()).hexdigest()[:8], 16) % 1000) / 10
                for c in continuations]

    def suspect(opener: str, continuations: list[str]) -> list[float]:
        return [n + (5.0 if opener + c == leaked else 0.0)
                for n, c in zip(natural(opener, continuations), continuations, strict=True)]

    alone = canary_exposure(suspect, canaries, candidates=199)
    against = canary_exposure(suspect, canaries, candidates=199, reference=natural)
    assert against[3].rank == 1 and alone[3].rank > 1
    assert [e.group for e in against if e.p_value <= 0.05 / len(canaries)] == ["G3"]
