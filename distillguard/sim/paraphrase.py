"""Reword every templated attack request on its own (the ``paraphrase`` evasion knob).

What an operator does once exact template hashing is known: pass each request
through a cheap paraphrasing model before sending it, asking it to reword the
instructions and keep the data. This rewriter stands in for that model,
deterministically (seeded per request) and without downloading anything:

- template lines (a pipeline's instructions: the lines many of its items share,
  and every system prompt) get synonyms for their instruction words and phrases
  (``data/paraphrase.yaml``), sentences reordered and merged, simple lists
  reordered and renumbered, short lines joined, an ordinary filler sentence now
  and then, headings and emphasis restyled;
- the fill-in (the data the template wraps) is touched lightly: a word here and
  there in its long sentences, a merge now and then, so that an item the
  simulator's finite corpora send again is not sent verbatim again;
- code and data lines (a program, JSON, a Python literal) stay as they are;
- a request may open with an ordinary first sentence.

``strength`` (0-1) sets how much changes: the share of replaceable words that
are replaced and the chances of every other change. From 0.5 up, every
template sentence of 40 characters or more with a replaceable word changes, so
no such line of a template goes out verbatim.

The synonym table, openings and fillers are split into two fixed halves (by a
hash of each member): on the ``train`` split the rewriter only writes one half,
on ``test`` only the other, so the paraphraser's own wording does not carry from
one side to the other.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from random import Random
from typing import Any

from distillguard.errors import InputError
from distillguard.sim.templates import read_data

__all__ = ["DEFAULT_STRENGTH", "STRENGTHS", "Paraphraser", "Vocabulary", "in_code_fence",
           "is_code", "load_vocabulary", "parse_strength"]

STRENGTHS = {"light": 0.3, "medium": 0.6, "heavy": 0.9}
DEFAULT_STRENGTH = "medium"
FORCE_FROM = 0.5          # from this strength every long template sentence with a slot changes
LONG_SENTENCE = 40
SHORT_LINE = 60
CACHE_LIMIT = 50_000
SHORT_RENDERINGS = 16     # renderings kept per short template line (under 40 characters)

_CURLY_APOSTROPHE = "\u2019"
_WORD = "A-Za-z0-9_'\u2019-"
_TAG = re.compile(r"<[^<>\n]{1,40}>|\{[^{}\n]{0,40}\}")   # <text 1>, {placeholder}
_SENTENCE_END = re.compile(r"(?<=[.!?])(?<!\b[A-Z]\.)(?<!\b(?:Mr|Dr|Ms|St|vs)\.)(?<!e\.g\.)"
                           r"(?<!i\.e\.)\s+(?=[\"'(\[]?[A-Z0-9])")
_LIST = re.compile(r"^(\s*)(?:(\d+)([.)])|([-*•]))\s+(\S.*)$")
_HEADING = re.compile(r"^(#{1,6})\s+(\S.*)$")
_CODE = re.compile(
    r"^\s*(?:def |class |return\b|import |from \S+ import|for \S.* in |while |if .*:\s*$|elif |"
    r"else:|try:|except\b|public |private |static |var |let |const |function\b|#include|"
    r"SELECT |print\(|console\.|System\.|[{}\[\]]|[A-Za-z_][\w.\[\]]*\s*[-+*/]?=[^=])|[{};]\s*$")
_CODE_CHARS = '{}();=<>"`|\\_'
CODE_DENSITY = 0.08       # a line with more of its characters in _CODE_CHARS is code or data
_LAST_WORD = re.compile("([A-Za-z'\u2019]+)[^A-Za-z'\u2019]*$")
_FIRST_WORD = re.compile("[^A-Za-z'\u2019]*([A-Za-z'\u2019]+)")
_A_AN = re.compile(r"(?:^|(?<=\s))([Aa]n?) $")
_FENCE = "```"
_OPENERS = frozenset(":*([\"'#>-)")
_BOLD = re.compile(r"\*\*[^*\n]{1,80}\*\*")
_DIGITS = re.compile(r"\d+")
_SECTIONS = ("verbs", "nouns", "modifiers")


@dataclass(frozen=True)
class Vocabulary:
    """The table for one side of the split: what is matched, and what may be written."""

    pattern: re.Pattern[str]                      # every member, whole words, any case
    candidates: dict[str, tuple[tuple[int, int], ...]]   # member -> (section, set) pairs
    written: tuple[tuple[str, ...], ...]          # per set, the members this side writes
    headword: tuple[str, ...]
    openings: tuple[str, ...]
    fillers: tuple[str, ...]
    connectors: tuple[str, ...]
    markers: tuple[str, ...] = ()
    noun_cues: frozenset[str] = frozenset()       # a word after these is read as a noun
    verb_cues: frozenset[str] = frozenset()       # ... after these as a verb
    object_cues: frozenset[str] = frozenset()     # ... before these (its object) as a verb
    starters: frozenset[str] = frozenset()        # first words lower-cased when merged
    _others: dict[tuple[int, str], tuple[str, ...]] = field(default_factory=dict)

    def alternatives(self, set_id: int, phrase: str) -> tuple[str, ...]:
        """What this side may write for ``phrase`` read as a member of set ``set_id``."""
        key = (set_id, phrase)
        out = self._others.get(key)
        if out is None:
            out = self._others[key] = tuple(w for w in self.written[set_id]
                                            if w.lower() != phrase)
        return out


def _halves(values: list[str], side: str | None) -> tuple[str, ...]:
    """The values ``side`` writes: a balanced half of them by a fixed hash (all for None)."""
    if side is None:
        return tuple(values)
    ranked = sorted(values, key=lambda v: zlib.crc32(f"paraphrase:{v}".encode()))
    flip = zlib.crc32("|".join(sorted(values)).encode()) & 1
    keep = flip if side == "train" else 1 - flip
    return tuple(v for i, v in enumerate(ranked) if i % 2 == keep)


def _trie(words: Iterable[str]) -> str:
    """A regular expression matching any of ``words``, longest first (a character trie)."""
    root: dict[str, dict] = {}
    for word in words:
        node = root
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def build(node: dict[str, dict]) -> str:
        alts = [re.escape(ch) + build(child) for ch, child in sorted(node.items()) if ch]
        if not alts:
            return ""
        body = alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
        return f"(?:{body})?" if "" in node else body

    return build(root)


def load_vocabulary(side: str | None = None) -> Vocabulary:
    """The paraphrase table (``data/paraphrase.yaml``) for ``side``: train, test or None (all)."""
    if side not in (None, "train", "test"):
        msg = f"paraphrase side must be train, test or None, got {side!r}"
        raise InputError(msg)
    data = read_data("paraphrase.yaml")
    candidates: dict[str, list[tuple[int, int]]] = {}
    written: list[tuple[str, ...]] = []
    headword: list[str] = []
    for section_index, section in enumerate(_SECTIONS):
        for words in data["synonyms"][section]:
            if not all(isinstance(w, str) and w for w in words):
                msg = f"paraphrase.yaml: {section} set {words!r} has a member that is no word"
                raise InputError(msg)
            set_id = len(written)
            written.append(_halves(list(words), side))
            headword.append(words[0].lower())
            for word in words:
                candidates.setdefault(word.lower(), []).append((section_index, set_id))
    pattern = re.compile(rf"(?<![{_WORD}])(?:{_trie(candidates)})(?![{_WORD}])", re.IGNORECASE)
    return Vocabulary(pattern=pattern, candidates={k: tuple(v) for k, v in candidates.items()},
                      written=tuple(written), headword=tuple(headword),
                      openings=_halves(list(data["openings"]), side),
                      fillers=_halves(list(data["fillers"]), side),
                      markers=_halves(list(data["markers"]), side),
                      connectors=tuple(data["connectors"]),
                      **{k: frozenset(data["grammar"][k]) for k in
                         ("noun_cues", "verb_cues", "object_cues", "starters")})


def parse_strength(value: str | float | None) -> float:
    """``light``, ``medium``, ``heavy`` or a number in (0, 1]; None is the default."""
    if value is None:
        return STRENGTHS[DEFAULT_STRENGTH]
    if isinstance(value, str) and value.strip() in STRENGTHS:
        return STRENGTHS[value.strip()]
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = -1.0
    if not 0 < number <= 1:
        msg = (f"paraphrase strength must be {', '.join(STRENGTHS)} or a number in (0, 1]; "
               f"got {value!r}")
        raise InputError(msg)
    return number


def _case(text: str) -> int:
    """0 as written in the table, 1 capitalized, 2 all capitals (a short acronym counts as 0)."""
    first = text.split(" ", 1)[0]
    letters = [c for c in text if c.isalpha()]
    if len(letters) > 1 and all(c.isupper() for c in letters) and " " not in text:
        return 0 if len(letters) <= 3 else 2
    if len(first) > 1 and first.isupper():
        return 0
    return 1 if letters and letters[0].isupper() else 0


def _apply_case(word: str, case: int) -> str:
    if case == 2:
        return word.upper()
    if case == 1:
        return word[:1].upper() + word[1:]
    return word


def _sense(candidates: tuple[tuple[int, int], ...], text: str, start: int, end: int,
           vocab: Vocabulary, phrase: str) -> int | None:
    """The set a matched word belongs to here, or None to leave it alone.

    A word that is both a noun and a verb in the table is read as one or the other from its
    neighbours ("the answer", "answer the question"); a word that is only a noun is left
    alone where it reads as a verb ("to list") and the other way round ("the return").
    Then the set the word heads wins, else the first.
    """
    sections = {section for section, _ in candidates}
    if sections & {0, 1}:
        before = _LAST_WORD.search(text[max(0, start - 30):start])
        prev = before.group(1).lower() if before else ""
        if {0, 1} <= sections:
            after = _FIRST_WORD.match(text, end, end + 30)
            nxt = after.group(1).lower() if after else ""
            if not prev:   # first word: a label ("Answer:") or an imperative ("Answer it")
                noun = text[end:end + 1] == ":"
            else:
                noun = prev in vocab.noun_cues or prev.endswith("'s") or (
                    prev not in vocab.verb_cues and nxt not in vocab.object_cues)
        elif 1 in sections:
            noun = prev not in vocab.verb_cues
        else:
            noun = prev in vocab.noun_cues and prev not in ("as", "to")
        wanted = 1 if noun else 0
        candidates = tuple(c for c in candidates if c[0] in (wanted, 2))
        if not candidates:
            return None
    for _, set_id in candidates:
        if vocab.headword[set_id] == phrase:
            return set_id
    return candidates[0][1]


def _starts_sentence(text: str, start: int) -> bool:
    """Nothing before ``start`` in the sentence, or a colon, bracket, quote, bullet, stop."""
    before = text[max(0, start - 8):start].rstrip()
    return not before or before[-1] in _OPENERS or before[-1] in ".!?"


@dataclass(frozen=True, slots=True)
class _Sentence:
    """A sentence as a format string with one field per replaceable word, and per field the
    original word and its alternatives (each already in the original's case, with "a" or
    "an" in front when the original had one)."""

    text: str
    form: str
    slots: tuple[tuple[str, tuple[str, ...]], ...]


def _escape(literal: str) -> str:
    return literal.replace("{", "{{").replace("}", "}}")


def _slot(text: str, m: re.Match[str], vocab: Vocabulary, heading: bool,
          tags: list[tuple[int, int]]) -> tuple[int, str, tuple[str, ...]] | None:
    """A matched word that may be replaced here: (where its replacement starts, the original,
    the alternatives, each already in the original's case with "a"/"an" in front when the
    original had one), or None."""
    start, end = m.span()
    if tags and any(a <= start < b for a, b in tags):
        return None
    original = m.group(0)
    if original[0].isupper() and not heading and not _starts_sentence(text, start) and not any(
            a <= start < b for a, b in _labels(text)):
        return None
    phrase = original.lower().replace(_CURLY_APOSTROPHE, "'")
    set_id = _sense(vocab.candidates[phrase], text, start, end, vocab, phrase)
    if set_id is None:
        return None
    alternatives = vocab.alternatives(set_id, phrase)
    if not alternatives:
        return None
    case = _case(original)
    words = tuple(_apply_case(w, case) for w in alternatives) if case else alternatives
    if text.endswith(("a ", "A ", "an ", "An "), 0, start):
        article = _A_AN.search(text, max(0, start - 4), start)
        if article:
            a = article.group(1)[0]
            original = f"{article.group(1)} {original}"
            words = tuple(f"{a}{'n' if _vowel(w) else ''} {w}" for w in words)
            start = article.start(1)
    return start, original, words


def _tags(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in _TAG.finditer(text)] if "<" in text or "{" in text else []


def _labels(text: str) -> list[tuple[int, int]]:
    """Bold spans (``**Partial Compliance**``): title case there is no name."""
    return [m.span() for m in _BOLD.finditer(text)] if "**" in text else []


def compile_sentence(text: str, vocab: Vocabulary, *, heading: bool = False) -> _Sentence:
    """Find the replaceable words of a sentence. Tags such as ``<text 1>`` stay as they are,
    and so do capitalized words inside a sentence (names, titles) unless it is a heading."""
    form: list[str] = []
    slots: list[tuple[str, tuple[str, ...]]] = []
    pos = 0
    tags = _tags(text)
    for m in vocab.pattern.finditer(text):
        found = _slot(text, m, vocab, heading, tags)
        if found is None:
            continue
        start, original, words = found
        form += [_escape(text[pos:start]), "{}"]
        slots.append((original, words))
        pos = m.end()
    if not slots:
        return _Sentence(text, "", ())
    form.append(_escape(text[pos:]))
    return _Sentence(text, "".join(form), tuple(slots))


def spots(text: str, vocab: Vocabulary) -> tuple[tuple[int, int, tuple[str, ...]], ...]:
    """Where a fill-in line's words may be replaced: (start, end, alternatives)."""
    tags = _tags(text)
    out = []
    for m in vocab.pattern.finditer(text):
        found = _slot(text, m, vocab, False, tags)
        if found is not None:
            out.append((found[0], m.end(), found[2]))
    return tuple(out)


def _vowel(word: str) -> bool:
    """Whether ``word`` takes "an" (by its spelling: good enough for the table's words)."""
    w = word.lower()
    return w[:1] in ("a", "e", "i", "o") or (w.startswith("un") and not w.startswith("uni"))


@dataclass(frozen=True, slots=True)
class _Line:
    kind: str                         # "keep", "fill", "text", "list", "heading"
    text: str                         # the line as written
    lead: str = ""                    # indentation, heading marks
    number: int = -1                  # list items: their number, -1 for bullets
    mark: str = ""                    # list items: "." or ")" or the bullet
    sentences: tuple[_Sentence, ...] = ()
    template: bool = True             # instructions (reworded) or fill-in (touched lightly)
    run: int = -1                     # list items in a run of three or more

    @property
    def long(self) -> bool:
        return len(self.text) >= LONG_SENTENCE


def _sentences(text: str, vocab: Vocabulary, *, heading: bool = False
               ) -> tuple[_Sentence, ...]:
    return tuple(compile_sentence(t, vocab, heading=heading)
                 for t in _SENTENCE_END.split(text) if t)


def is_code(line: str) -> bool:
    """A line of a program, JSON or a Python literal (kept as it is), not prose."""
    if _CODE.search(line):
        return True
    return sum(line.count(c) for c in _CODE_CHARS) > CODE_DENSITY * len(line)


def compile_line(raw: str, vocab: Vocabulary, template: bool) -> _Line:
    """One line: code and data kept, fill-in left to be touched when sent, template prose
    split into sentences with their replaceable words found."""
    if not raw.strip() or is_code(raw):
        return _Line("keep", raw)
    if not template:
        return _Line("fill", raw, template=False)
    heading = _HEADING.match(raw)
    if heading:
        return _Line("heading", raw, lead=heading.group(1), template=template,
                     sentences=_sentences(heading.group(2), vocab, heading=True))
    item = _LIST.match(raw)
    if item:
        indent, number, sep, bullet, rest = item.groups()
        return _Line("list", raw, lead=indent, number=int(number) if number else -1,
                     mark=sep or bullet, sentences=_sentences(rest, vocab),
                     template=template)
    lead = raw[:len(raw) - len(raw.lstrip())]
    return _Line("text", raw, lead=lead, sentences=_sentences(raw.strip(), vocab),
                 template=template)


def in_code_fence(lines: list[str]) -> list[bool]:
    """Per line: a fence of a pair of ``` fences or inside one (an unmatched fence is none)."""
    fences = [i for i, line in enumerate(lines) if line.strip().startswith(_FENCE)]
    out = [False] * len(lines)
    for start, end in zip(fences[::2], fences[1::2], strict=False):
        out[start:end + 1] = [True] * (end + 1 - start)
    return out


@dataclass(frozen=True)
class _Text:
    """A compiled text: its lines, and which of them a request rewrites."""

    lines: tuple[_Line, ...]
    template: tuple[int, ...]          # template lines (reworded)
    fills: tuple[int, ...]             # fill-in lines long enough to be touched
    runs: tuple[tuple[int, ...], ...]  # list runs that may be reordered

    @classmethod
    def of(cls, lines: tuple[_Line, ...]) -> _Text:
        runs: dict[int, list[int]] = {}
        for i, line in enumerate(lines):
            if line.run >= 0:
                runs.setdefault(line.run, []).append(i)
        return cls(lines, tuple(i for i, x in enumerate(lines) if x.kind not in ("keep", "fill")),
                   tuple(i for i, x in enumerate(lines)
                         if x.kind == "fill" and len(x.text) >= LONG_SENTENCE),
                   tuple(tuple(r) for r in runs.values()))


def compile_text(text: str, vocab: Vocabulary, template_lines: frozenset[str] | None = None,
                 cache: dict[str, _Line] | None = None) -> tuple[_Line, ...]:
    """Every line compiled (``template_lines`` None: all are template); template lines are
    looked up in ``cache`` first, as the same instructions recur across requests."""
    lines: list[_Line] = []
    raws = text.split("\n")
    for raw, fenced in zip(raws, in_code_fence(raws), strict=True):
        if fenced:
            lines.append(_Line("keep", raw))
            continue
        # Only template lines are cached: a line that is template in one text (a system
        # prompt, all template) may be fill-in in another, and a worker's cache must never
        # make its output depend on what it rendered before.
        template = template_lines is None or _DIGITS.sub("0", raw) in template_lines
        line = cache.get(raw) if template and cache is not None else None
        if line is None:
            line = compile_line(raw, vocab, template)
            if template and cache is not None:
                if len(cache) >= CACHE_LIMIT:
                    cache.clear()
                cache[raw] = line
        lines.append(line)
    return tuple(_mark_runs(lines))


def _mark_runs(lines: list[_Line]) -> list[_Line]:
    """Number runs of three or more numbered one-line template items (a list of
    requirements); items sharing a number with their neighbour (Instruction/Input/Output
    triples) make no such run."""
    out = list(lines)
    run: list[int] = []
    run_id = 0
    for i in range(len(lines) + 1):
        item = lines[i] if i < len(lines) else None
        numbered = item is not None and item.kind == "list" and item.number >= 0 \
            and item.template
        if numbered and (not run or lines[run[-1]].number != item.number):
            run.append(i)
            continue
        if len(run) >= 3:
            for k in run:
                line = lines[k]
                out[k] = _Line(line.kind, line.text, line.lead, line.number, line.mark,
                               line.sentences, line.template, run_id)
            run_id += 1
        run = [i] if numbered else []
    return out


class Paraphraser:
    """Rewords requests at one strength with one side's vocabulary; ``template_lines`` are
    the lines of user messages that are instructions, digits folded to 0 (system prompts are
    all instructions)."""

    def __init__(self, vocab: Vocabulary, strength: float,
                 template_lines: frozenset[str] = frozenset()) -> None:
        self.vocab = vocab
        self.strength = strength
        self.template_lines = template_lines
        self.fillers = tuple(compile_sentence(f, vocab) for f in vocab.fillers)
        self.openings = tuple(compile_sentence(f, vocab) for f in vocab.openings)
        self._compiled: dict[Any, _Text] = {}
        self._lines: dict[str, _Line] = {}
        self._spots: dict[str, tuple[tuple[int, int, tuple[str, ...]], ...]] = {}
        self._short: dict[str, list[str | None]] = {}

    def compiled(self, text: str, key: Any, *, system: bool = False) -> tuple[_Line, ...]:
        return self._text(text, key, system=system).lines

    def _text(self, text: str, key: Any, *, system: bool = False) -> _Text:
        compiled = self._compiled.get(key)
        if compiled is None:
            if len(self._compiled) >= CACHE_LIMIT:
                self._compiled.clear()
            compiled = self._compiled[key] = _Text.of(compile_text(
                text, self.vocab, None if system else self.template_lines, self._lines))
        return compiled

    def short_line(self, line: _Line, render: _Render) -> str:
        """One of ``SHORT_RENDERINGS`` renderings of a short template line; rendering ``i`` is
        drawn from a seed of its own, so it is the same whatever was rendered before."""
        kept = self._short.get(line.text)
        if kept is None:
            if len(self._short) >= CACHE_LIMIT:
                self._short.clear()
            kept = self._short[line.text] = [None] * SHORT_RENDERINGS
        i = int(render.rnd.random() * SHORT_RENDERINGS)
        text = kept[i]
        if text is None:
            seed = zlib.crc32(line.text.encode()) * SHORT_RENDERINGS + i
            text = kept[i] = _Render(self, Random(seed)).sentence(line.sentences[0])
        return text.replace("**", "") if render.strip_bold else text

    def touch(self, text: str, rnd: Random) -> str:
        """``text`` with one of its replaceable words replaced (a fill-in line's light touch)."""
        found = self._spots.get(text)
        if found is None:
            if len(self._spots) >= CACHE_LIMIT:
                self._spots.clear()
            found = self._spots[text] = spots(text, self.vocab)
        if not found:
            return text
        start, end, words = found[int(rnd.random() * len(found))]
        return text[:start] + words[int(rnd.random() * len(words))] + text[end:]

    def paraphrase(self, text: str, seed: int, *, key: Any = None, system: bool = False) -> str:
        """``text`` reworded (a user message, or a system prompt); the same ``seed`` gives the
        same wording. ``key`` names ``text`` in the cache of compiled texts (default: itself)."""
        compiled = self._text(text, (system, text if key is None else key), system=system)
        return _Render(self, Random(seed)).text(compiled, opening=not system)


class _Render:
    """One request's choices: its style (list marks, headings, emphasis), the wording it
    keeps to, and the random draw of every change."""

    def __init__(self, p: Paraphraser, rnd: Random) -> None:
        s = p.strength
        self.p, self.rnd, self.s = p, rnd, s
        self.fillers_left = int(1 + 3 * s * rnd.random())
        self.list_mark = rnd.choice((".", ".", ")")) if rnd.random() < s else None
        self.heading_shift = rnd.choice((-1, 1)) if rnd.random() < 0.5 * s else 0
        self.heading_lower = rnd.random() < 0.5 * s
        self.strip_bold = rnd.random() < 0.3 * s
        self.force = s >= FORCE_FROM

    def sentence(self, sent: _Sentence, long_line: bool = False) -> str:
        slots = sent.slots
        if not slots:
            return sent.text
        r, s = self.rnd.random, self.s
        words = [alts[int(r() * len(alts))] if r() < s else original
                 for original, alts in slots]
        if self.force and (long_line or len(sent.text) >= LONG_SENTENCE) and all(
                w is original for w, (original, _) in zip(words, slots, strict=True)):
            i = int(r() * len(slots))
            words[i] = slots[i][1][int(r() * len(slots[i][1]))]
        return sent.form.format(*words)

    def decap(self, text: str) -> str:
        """Lower-case a merged sentence's first word when it is an ordinary word."""
        word = text.split(" ", 1)[0]
        if word.lower().strip(",.:;") in self.p.vocab.starters and not word.isupper():
            return text[:1].lower() + text[1:]
        return text

    def line(self, line: _Line) -> str:
        """A template line: words replaced, sentences reordered and merged, a filler or a
        discourse marker now and then. A short one-sentence line (no unit a detector hashes)
        comes from a few renderings kept per line."""
        if len(line.sentences) == 1 and not line.long:
            return self.p.short_line(line, self)
        rnd, s = self.rnd, self.s
        long_line = line.long
        texts = [self.sentence(x, long_line) for x in line.sentences]
        quoted = '"' in line.text   # a quotation keeps its sentences in place
        if line.kind != "heading" and long_line:
            if self.fillers_left and self.p.fillers and rnd.random() < 0.15 * s:
                self.fillers_left -= 1
                filler = self.sentence(rnd.choice(self.p.fillers), True)
                texts.insert(rnd.randint(1, len(texts)), filler)
            if len(texts) >= 3 and not quoted and rnd.random() < 0.5 * s:
                i = rnd.randrange(1, len(texts) - 1)
                texts[i], texts[i + 1] = texts[i + 1], texts[i]
        if len(texts) > 1 and not quoted:
            merge = 0.4 * s
            out = [texts[0]]
            for t in texts[1:]:
                if out[-1].endswith(".") and t and rnd.random() < merge:
                    out[-1] = out[-1][:-1] + rnd.choice(self.p.vocab.connectors) + self.decap(t)
                else:
                    out.append(t)
            texts = out
        text = " ".join(texts)
        if long_line:
            if self.force and all(t == x.text for t, x in zip(texts, line.sentences,
                                                                strict=False)) \
                    and len(texts) == len(line.sentences):
                text = self.restructure(text)
            elif self.p.vocab.markers and rnd.random() < 0.1 * s:
                text = rnd.choice(self.p.vocab.markers) + self.decap(text)
        return text.replace("**", "") if self.strip_bold else text

    def restructure(self, text: str) -> str:
        """A long template line no word of which could change: swap two items of its
        enumeration, or open it with a discourse marker."""
        items = text.split(", ")
        if len(items) >= 4:
            end = len(items[-1].rstrip(".;:!?"))
            tail, items[-1] = items[-1][end:], items[-1][:end]
            i = 1 + int(self.rnd.random() * (len(items) - 2))
            items[i], items[i + 1] = items[i + 1], items[i]
            return ", ".join(items) + tail
        if not self.p.vocab.markers:
            return text
        return self.rnd.choice(self.p.vocab.markers) + self.decap(text)

    def text(self, compiled: _Text, *, opening: bool) -> str:
        rnd, s = self.rnd, self.s
        lines = compiled.lines
        out: list[str | None] = [line.text for line in lines]
        fills = compiled.fills
        if fills:
            k = min(len(fills), int(s * len(fills) + rnd.random()))
            for pos in (fills if k >= len(fills) else rnd.sample(fills, k)):
                out[pos] = self.p.touch(lines[pos].text, rnd)
        order = self._list_orders(compiled.runs)
        joinable = joined = -2   # the template text line the next one may join, and where
        for pos in compiled.template:
            line = lines[pos]
            if line.kind == "heading":
                level = min(6, max(1, len(line.lead) + self.heading_shift))
                body = self.line(line)
                if self.heading_lower:
                    body = body[:1] + body[1:].lower()
                out[pos] = "#" * level + " " + body
            elif line.kind == "list" and pos in order:
                item, number = lines[order[pos][0]], order[pos][1]
                out[pos] = f"{item.lead}{number}{self.list_mark or item.mark} {self.line(item)}"
            elif line.kind == "list":
                mark = f"{line.number}{line.mark}" if line.number >= 0 else line.mark
                out[pos] = f"{line.lead}{mark} {self.line(line)}"
            else:
                body = self.line(line)
                before = out[joined] if joinable == pos - 1 else None
                if (before and len(before) < SHORT_LINE and len(body) < SHORT_LINE
                        and rnd.random() < 0.3 * s):
                    out[joined] = before + (" " if before[-1:] in ".!?:" else "; ") \
                        + self.decap(body)
                    out[pos] = None
                    joinable = pos
                    continue
                out[pos] = line.lead + body
                joined = joinable = pos
        text = "\n".join([x for x in out if x is not None])
        if opening and self.p.openings and rnd.random() < 0.6 * s:
            first = self.sentence(rnd.choice(self.p.openings), True)
            text = first + rnd.choice(("\n\n", "\n", " ")) + text
        return text

    def _list_orders(self, runs: tuple[tuple[int, ...], ...]) -> dict[int, tuple[int, int]]:
        """For the list runs this request rewrites: position -> (source line, new number)."""
        orders: dict[int, tuple[int, int]] = {}
        for positions in runs:
            if self.list_mark is None and self.rnd.random() >= 0.6 * self.s:
                continue
            src = list(positions)
            if self.rnd.random() < 0.6 * self.s:
                for _ in range(max(1, len(src) // 3)):
                    i = self.rnd.randrange(len(src) - 1)
                    src[i], src[i + 1] = src[i + 1], src[i]
            for number, (pos, source) in enumerate(zip(positions, src, strict=True), 1):
                orders[pos] = (source, number)
        return orders
