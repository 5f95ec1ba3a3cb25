"""Where the technique lexicon fires in a request: the spans the pages highlight.

Spans come from RE2 through pyarrow's regex kernels, the engine the signals
use, so a page highlights exactly what the signals match: a global replace
wraps every match of a technique's patterns in marker characters, read back as
positions. Pages render the text escaped, piece by piece (``segments``), with
``<mark>`` around the pieces a technique matched; the text itself is never
trusted as markup.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from distillguard.signals.lexicon import Lexicon

__all__ = ["Segment", "Span", "segments", "technique_spans"]

_OPEN, _CLOSE = "\x02", "\x03"
_MARKER = re.compile(f"([{_OPEN}{_CLOSE}])")
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


def technique_spans(texts: list[str], lexicon: Lexicon) -> list[list[Span]]:
    """For each text, every span a technique's strong or weak patterns match.

    >>> from distillguard.signals.lexicon import load_lexicon
    >>> [(s.start, s.end, s.technique) for s in
    ...  technique_spans(["Please think step by step."], load_lexicon())[0]
    ...  if s.strength == "strong"]
    [(7, 25, 'cot_elicitation')]
    """
    clean = [t.replace(_OPEN, "\ufffd").replace(_CLOSE, "\ufffd") for t in texts]
    array = pa.array(clean, pa.string())
    found: list[list[Span]] = [[] for _ in texts]
    for technique in lexicon.techniques:
        for strength, pattern in zip(_STRENGTHS, (technique.strong, technique.weak), strict=True):
            if not pattern or not len(array):
                continue
            marked = pc.replace_substring_regex(array, pattern, _OPEN + "\\0" + _CLOSE)
            for i, text in enumerate(marked.to_pylist()):
                if text is not None and _OPEN in text:
                    found[i] += _marks(text, technique.name, strength)
    return found


def _marks(marked: str, technique: str, strength: str) -> list[Span]:
    """Spans of a text whose matches are wrapped in the marker characters."""
    spans: list[Span] = []
    position = start = 0
    for piece in _MARKER.split(marked):
        if piece == _OPEN:
            start = position
        elif piece == _CLOSE:
            if position > start:
                spans.append(Span(start, position, technique, strength))
        else:
            position += len(piece)
    return spans


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
