from __future__ import annotations

from distillguard.safeguards import SummaryParams, answer_only, split_steps, summarize_reasoning

TRACE = """Okay, so the user wants to know how many minutes are in a week. Let me think.

First, a day has 24 hours, and each hour has 60 minutes. So a day has 24 * 60 = 1440 minutes.

Wait, is that right? 24 * 60... 20 * 60 = 1200, plus 4 * 60 = 240, so 1440. Yes.

Next, a week has 7 days. Hmm, let me multiply: 7 * 1440. 7 * 1400 = 9800 and 7 * 40 = 280.
That gives 10080.

```python
print(7 * 24 * 60)
```

Therefore, a week has 10,080 minutes."""


def _sentences(text: str) -> set[str]:
    return {s for step in split_steps(text) for s in step}


def test_summary_keeps_the_conclusions_and_drops_the_trace() -> None:
    summary = summarize_reasoning(TRACE)
    assert summary.startswith("Reasoning summary: ")
    assert "Therefore, a week has 10,080 minutes." in summary
    assert "1440 minutes" in summary
    for noise in ("Wait", "Hmm", "Let me", "print(", "is that right"):
        assert noise not in summary
    assert len(summary) < len(TRACE) / 2


def test_summary_copies_sentences_verbatim_in_order() -> None:
    body = summarize_reasoning(TRACE).removeprefix("Reasoning summary: ").rsplit(" [", 1)[0]
    kept = [s for s in _sentences(TRACE) if s in body]
    assert kept and sum(len(s) for s in kept) + len(kept) - 1 == len(body)
    positions = [TRACE.index(s) for s in sorted(kept, key=body.index)]
    assert positions == sorted(positions)


def test_summary_respects_its_limits_and_keeps_the_last_conclusion() -> None:
    short = summarize_reasoning(TRACE, SummaryParams(max_sentences=1, max_chars=200))
    assert short.removeprefix("Reasoning summary: ").startswith("Therefore, a week has 10,080")
    long_step = "So the value is " + "very " * 200 + "large."
    cut = summarize_reasoning(long_step, SummaryParams(max_chars=100))
    assert cut.endswith("...") and len(cut) < 140


def test_summary_is_deterministic_and_empty_for_empty_input() -> None:
    assert summarize_reasoning(TRACE) == summarize_reasoning(TRACE)
    assert summarize_reasoning("") == ""
    assert summarize_reasoning("Hmm. Wait? Let me see.") == ""


def test_answer_only_keeps_the_result_of_a_worked_answer() -> None:
    worked = ("Step 1: a day has 1440 minutes.\nStep 2: multiply by 7.\n\n"
              "The answer is 10,080 minutes.")
    assert answer_only(worked) == "The answer is 10,080 minutes."
    numbered = "1. Add 2 and 2.\n2. Double it.\n3. Subtract 1.\n\n7"
    assert answer_only(numbered) == "7"


def test_answer_only_leaves_plain_answers_and_code_alone() -> None:
    plain = "Paris is the capital of France.\n\nIt lies on the Seine."
    assert answer_only(plain) == plain
    code = "Therefore use this:\n\n```python\nprint(1)\n```"
    assert answer_only(code) == code
