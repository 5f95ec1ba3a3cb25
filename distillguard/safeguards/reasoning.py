"""Reasoning safeguards: a short extractive summary in place of a raw reasoning trace, and
an answer-only mode.

A raw trace (every step, every second thought) is what a distillation pipeline wants most;
a customer needs what the steps concluded. ``summarize_reasoning`` keeps one sentence per
step, the one that states the step's result, drops self-talk ("Wait,", "Hmm", "Let me
check") and code, and keeps at most a few sentences, always the last conclusion. It copies
sentences verbatim (no model call, no new words) and is deterministic.

``answer_only`` goes further for accounts judged to be extracting: the reasoning is dropped
and a worked answer is cut to its final result.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["SummaryParams", "answer_only", "split_steps", "summarize_reasoning"]


@dataclass(frozen=True, slots=True)
class SummaryParams:
    """``max_sentences``: sentences kept; ``max_chars``: length of the summary's text."""

    max_sentences: int = 4
    max_chars: int = 600


_FENCE = re.compile(r"```.*?(```|$)", re.S)
_STEP_START = re.compile(r"^\s*(?:\d+[.)]|step\s+\d+\b|[-*\u2022]\s|#+\s|(?:first|second|third|"
                         r"next|then|finally|lastly)\b)", re.I)
_SENTENCE = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")
_SELF_TALK = re.compile(r"^\s*(?:wait|hmm+|h?mm|um+|uh+|let me|let's|lets|actually|ok(?:ay)?\b|"
                        r"alright|hold on|but wait|so,? let me|i think|i guess|maybe|perhaps|"
                        r"oh\b|ah\b|no,|yes,|right,|i need to|i should|i'll|we need to check)",
                        re.I)
_CONCLUSION = re.compile(r"\b(?:therefore|thus|hence|so the|so,|which means|this means|"
                         r"that means|we get|gives|giving|equals|results? in|the answer|in total|"
                         r"overall|conclude|in conclusion|final(?:ly)?|the result|is correct|"
                         r"must be|comes to|works out)\b|=", re.I)
_NUMBER = re.compile(r"\d")


def split_steps(text: str) -> list[list[str]]:
    """The trace's steps (paragraphs, numbered or bulleted lines), each a list of its
    sentences, with code blocks removed."""
    text = _FENCE.sub(" ", text.replace("\r\n", "\n"))
    steps: list[list[str]] = []
    current: list[str] = []
    for line in text.split("\n"):
        if not line.strip() or _STEP_START.match(line):
            if current:
                steps.append(current)
            current = []
        if line.strip():
            current += [s.strip() for s in _SENTENCE.split(line.strip()) if s.strip()]
    if current:
        steps.append(current)
    return steps


def _score(sentence: str, last_in_step: bool) -> float:
    score = 2.0 if _CONCLUSION.search(sentence) else 0.0
    score += 0.5 if _NUMBER.search(sentence) else 0.0
    return score + (1.0 if last_in_step else 0.0)


def _conclusions(steps: list[list[str]], want: int) -> list[tuple[int, float, str]]:
    """(position, score, sentence) of each step's most conclusive sentence; when there are
    fewer steps than ``want``, other sentences that state a result fill in."""
    best: dict[int, tuple[int, float, str]] = {}
    extra: list[tuple[int, float, str]] = []
    seen: set[str] = set()
    position = 0
    for k, step in enumerate(steps):
        for i, sentence in enumerate(step):
            position += 1
            key = sentence.lower()
            if (_SELF_TALK.match(sentence) or sentence.rstrip().endswith("?") or len(sentence) < 8
                    or key in seen):
                continue
            seen.add(key)
            candidate = (position, _score(sentence, i == len(step) - 1), sentence)
            if k not in best or candidate[1] >= best[k][1]:
                if k in best:
                    extra.append(best[k])
                best[k] = candidate
            else:
                extra.append(candidate)
    picked = list(best.values())
    fill = sorted((e for e in extra if e[1] >= 2.0), key=lambda e: (-e[1], -e[0]))
    return sorted(picked + fill[: max(want - len(picked), 0)])


def summarize_reasoning(text: str, params: SummaryParams = SummaryParams()) -> str:
    """A few of the trace's own sentences, the steps' conclusions, in their order.

    >>> summarize_reasoning("First, 3 apples plus 4 apples. That gives 7 apples.\\n\\n"
    ...                     "Wait, did I miss any? No.\\n\\nThen halve it. "
    ...                     "So the answer is 3.5.")
    'Reasoning summary: That gives 7 apples. So the answer is 3.5. [2 of 6 sentences kept, the rest withheld]'
    """
    steps = split_steps(text)
    picked = _conclusions(steps, params.max_sentences)
    if not picked:
        return ""
    last = picked[-1]
    others = sorted(picked[:-1], key=lambda p: (-p[1], -p[0]))[: max(params.max_sentences - 1, 0)]
    chosen = sorted([*others, last])
    while len(chosen) > 1 and len(" ".join(p[2] for p in chosen)) > params.max_chars:
        weakest = min(chosen[:-1], key=lambda p: (p[1], p[0]))
        chosen.remove(weakest)
    body = " ".join(p[2] for p in chosen)
    if len(body) > params.max_chars:
        body = body[: params.max_chars].rsplit(" ", 1)[0] + "..."
    total = sum(len(step) for step in steps)
    note = f" [{len(chosen)} of {total} sentences kept, the rest withheld]" if total > len(
        chosen) else ""
    return f"Reasoning summary: {body}{note}"


_FINAL_MARKER = re.compile(r"(?:final answer|the answer is|answer:|in conclusion|therefore|"
                           r"so the (?:answer|result|total)|the result is)", re.I)


def answer_only(answer: str) -> str:
    """A worked answer cut to its result: from the last sentence that announces the answer
    ("The answer is", "Therefore", "Final answer:") to the end of its paragraph, or the last
    paragraph of an answer laid out in numbered steps. Any other answer comes back unchanged
    (a plain answer is already only an answer; code is never cut)."""
    if "```" in answer:
        return answer
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", answer.strip()) if p.strip()]
    for paragraph in reversed(paragraphs):
        sentences = [s for s in _SENTENCE.split(paragraph) if s.strip()]
        for i in range(len(sentences) - 1, -1, -1):
            if _FINAL_MARKER.search(sentences[i]):
                return " ".join(sentences[i:]).strip()
    steps = split_steps(answer)
    stepped = sum(1 for line in answer.splitlines() if _STEP_START.match(line))
    if len(steps) >= 3 and stepped >= 2 and paragraphs:
        return paragraphs[-1]
    return answer
