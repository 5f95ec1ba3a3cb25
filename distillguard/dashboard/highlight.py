"""Where the technique lexicon fires in a request: the spans the pages highlight.

The lexicon's patterns are RE2 syntax (the signals run them through pyarrow);
the ones it uses are also valid Python regular expressions with the same
meaning under ``re.ASCII`` (RE2's ``\\w``, ``\\b`` and ``\\d`` are ASCII), and a test
checks that both engines agree on which texts match. Python's are compiled
once, where RE2 through pyarrow would compile every pattern again for each
page. Pages render the text escaped, piece by piece (``segments``), with
``<mark>`` around the pieces a technique matched; the text itself is never
trusted as markup.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from functools import lru_cache

from distillguard.signals.lexicon import Lexicon

__all__ = ["Segment", "Span", "segments", "technique_spans"]

_STRENGTHS = ("strong", "weak")


@dataclass(frozen=True)
class Span:
    """Characters ``[start, end)`` of a text matched by a technique's patterns."""

    start: int
    end: int
    technique: str
    strength: str


@dataclass(frozen=True)
class Segment:
    """A piece of a text and the techniques that matched it (none: plain text)."""

    text: str
    techniques: tuple[str, ...] = ()
    strength: str = ""


@lru_cache(maxsize=8)
def _compiled(lexicon: Lexicon) -> list[tuple[str, str, re.Pattern[str]]]:
    return [(t.name, strength, re.compile(pattern, re.ASCII))
            for t in lexicon.techniques
            for strength, pattern in zip(_STRENGTHS, (t.strong, t.weak), strict=True) if pattern]


def technique_spans(texts: list[str], lexicon: Lexicon) -> list[list[Span]]:
    """For each text, every span a technique's strong or weak patterns match.

    >>> from distillguard.signals.lexicon import load_lexicon
    >>> text = "Please think step by step."
    >>> [(s.start, s.end, text[s.start:s.end]) for s in
    ...  technique_spans([text], load_lexicon())[0] if s.strength == "strong"]
    [(7, 25, 'think step by step')]
    """
    patterns = _compiled(lexicon)
    return [[Span(m.start(), m.end(), name, strength)
             for name, strength, pattern in patterns
             for m in pattern.finditer(text) if m.end() > m.start()]
            for text in texts]


def segments(text: str, spans: list[Span]) -> list[Segment]:
    """``text`` cut at every span boundary; each piece names the techniques covering it
    (strong when any strong pattern covers it).

    >>> [(s.text, s.techniques) for s in segments("ab cd", [Span(3, 5, "t", "weak")])]
    [('ab ', ()), ('cd', ('t',))]
    """
    cuts = sorted({0, len(text), *(s.start for s in spans), *(s.end for s in spans)})
    out: list[Segment] = []
    for a, b in itertools.pairwise(cuts):
        covering = [s for s in spans if s.start <= a and s.end >= b]
        names = tuple(dict.fromkeys(s.technique for s in covering))
        strength = ("strong" if any(s.strength == "strong" for s in covering)
                    else "weak" if covering else "")
        if out and (out[-1].techniques, out[-1].strength) == (names, strength):
            out[-1] = Segment(out[-1].text + text[a:b], names, strength)
        else:
            out.append(Segment(text[a:b], names, strength))
    return out
