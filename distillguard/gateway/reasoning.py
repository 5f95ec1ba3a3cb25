"""The short summary that replaces a flagged account's raw reasoning.

A raw reasoning trace is what a distillation pipeline wants most (DESIGN.md,
safeguard 5: "returning a summary of reasoning instead of the raw trace"). The
summary keeps the trace's opening sentence, cut short, and says how much was
withheld; the answer itself is never touched.
"""

from __future__ import annotations

import re

__all__ = ["summarize_reasoning"]

_SENTENCE_END = re.compile(r"(?<=[.!?])\s|\n")


def summarize_reasoning(text: str, max_chars: int = 160) -> str:
    """The first sentence of ``text`` (at most ``max_chars``) and a note of what was withheld.

    >>> summarize_reasoning("First, parse the input. Then sum the numbers. Done.", 80)
    'Reasoning summary: First, parse the input. [2 more sentences withheld]'
    """
    text = text.strip()
    if not text:
        return ""
    parts = [p for p in _SENTENCE_END.split(text) if p.strip()]
    first = parts[0].strip()
    if len(first) > max_chars:
        first = first[:max_chars].rsplit(" ", 1)[0] + "..."
    rest = len(parts) - 1
    note = f" [{rest} more sentence{'s' if rest != 1 else ''} withheld]" if rest else ""
    return f"Reasoning summary: {first}{note}"
