"""Canaries: keyed, harmless marks that only one account group receives, so that a model
trained on that group's outputs gives the group away.

Each group (a campaign, or one account under review) gets, from one secret:

- a **signature phrase**, an ordinary-sounding closing remark ("As a side note, amber
  herons rarely outlast the tide.") appended to a small share of its answers. The phrase's
  *core* (adjective, noun, verb, object: about 8 million combinations) is what a suspect's
  outputs are searched for;
- a **decoy tool**, a plausible function definition with a keyed name
  (``search_orchard_index_7f3a``) added to the tool list of requests that already carry
  tools. A model trained on the group's agentic trajectories calls or names it.

Everything here is a pure function; the gateway decides when to apply them (``plan``).
"""

from __future__ import annotations

import hashlib
import hmac
import random
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["Canary", "CanaryHit", "CanaryReport", "Exposure", "add_decoy_tool",
           "append_signature", "canary_check", "canary_exposure", "canary_for", "canary_queries",
           "decoy_tool", "normalize_text", "should_mark", "signature_suffix"]

Api = Literal["openai", "anthropic"]

_OPENERS = ("As a side note", "One last thought", "For what it is worth", "A small aside",
            "Worth remembering", "On a lighter note", "Just so you know", "As the saying goes")
_ADJECTIVES = ("amber", "quiet", "silver", "patient", "hollow", "copper", "gentle", "crimson",
               "distant", "velvet", "wandering", "frosted", "humble", "golden", "restless",
               "sleepy", "bright", "ancient", "curious", "tidy", "misty", "brave", "lonely",
               "careful", "clever", "dusty", "hidden", "mellow", "nimble", "rustic", "steady",
               "woolen")
_NOUNS = ("lanterns", "herons", "orchards", "kettles", "harbors", "lighthouses", "meadows",
          "compasses", "sparrows", "bridges", "candles", "glaciers", "violins", "gardens",
          "ferries", "windmills", "pebbles", "comets", "anchors", "foxes", "teapots", "ladders",
          "marbles", "otters", "canyons", "maples", "ribbons", "beacons", "tunnels", "pelicans",
          "quilts", "turnips")
_VERBS = ("rarely outlast", "often follow", "never forget", "quietly guard", "always outrun",
          "seldom envy", "gladly borrow", "patiently await", "softly echo", "slowly outgrow",
          "kindly remember", "proudly carry", "secretly admire", "calmly ignore",
          "eagerly chase", "gently return")
_OBJECTS = ("the tide", "the morning frost", "a borrowed map", "the second bell",
            "the autumn fair", "an open window", "the last ferry", "the winter market",
            "a paper kite", "the northern road", "the evening train", "a spare key",
            "the village clock", "the spring rain", "an old promise", "the harvest moon",
            "a quiet library", "the river mist", "the first snow", "a folded letter",
            "the garden gate", "the midnight choir", "a copper coin", "the salt marsh",
            "the hill station", "a painted boat", "the lantern festival", "the slow current",
            "a patient teacher", "the tall grass", "the western pier", "a forgotten song")
_TOOL_VERBS = ("search", "lookup", "fetch", "resolve", "query", "index", "scan", "collect")
_TOOL_NOUNS = ("orchard", "ledger", "archive", "beacon", "harbor", "atlas", "registry",
               "catalog", "digest", "compass", "lantern", "almanac", "journal", "quarry",
               "meadow", "signal")
_TOOL_OBJECTS = ("index", "records", "entries", "notes", "summary", "facts", "sources", "refs")


@dataclass(frozen=True, slots=True)
class Canary:
    """One group's canaries. ``core`` is the phrase's searchable part (normalized)."""

    group: str
    phrase: str
    core: str
    tool_name: str
    tool_description: str


def _digest(secret: str, label: str) -> bytes:
    return hmac.new(secret.encode("utf-8"), label.encode("utf-8"), hashlib.sha256).digest()


def _pick(options: Sequence[str], byte_pair: bytes) -> str:
    return options[int.from_bytes(byte_pair, "big") % len(options)]


def _core(adjective: str, noun: str, verb: str, obj: str) -> str:
    """A phrase's searchable part: the grammar every phrase (and every candidate of the
    exposure test) follows."""
    return f"{adjective} {noun} {verb} {obj}"


def canary_for(secret: str, group: str) -> Canary:
    """The canaries of ``group`` under ``secret`` (same inputs, same canaries).

    >>> canary_for("s3cret", "C1").tool_name
    'index_beacon_sources_8bf5'
    """
    d = _digest(secret, f"canary:{group}")
    opener, adjective, noun = _pick(_OPENERS, d[0:2]), _pick(_ADJECTIVES, d[2:4]), _pick(
        _NOUNS, d[4:6])
    verb, obj = _pick(_VERBS, d[6:8]), _pick(_OBJECTS, d[8:10])
    core = _core(adjective, noun, verb, obj)
    tool_verb, tool_noun = _pick(_TOOL_VERBS, d[10:12]), _pick(_TOOL_NOUNS, d[12:14])
    tool_object = _pick(_TOOL_OBJECTS, d[14:16])
    tool_name = f"{tool_verb}_{tool_noun}_{tool_object}_{d[16:18].hex()}"
    description = (f"Look up background facts in the {tool_noun} {tool_object} for a topic. "
                   f"Returns short matching passages.")
    return Canary(group, f"{opener}, {core}.", normalize_text(core), tool_name, description)


def canary_queries() -> tuple[str, ...]:
    """Prompts that draw a signature phrase out of a model trained on it: every phrase
    opens with one of these, so a suspect asked to continue them completes the phrases it
    learned (a clean model has no reason to name a keyed adjective-noun-verb-object)."""
    return tuple(f"{opener}," for opener in _OPENERS)


def should_mark(secret: str, request_id: str, share: float) -> bool:
    """Whether this request's answer carries the signature phrase: a keyed hash of the
    request id below ``share`` (the same request always gets the same answer)."""
    if share <= 0.0:
        return False
    u = int.from_bytes(_digest(secret, f"mark:{request_id}")[:8], "big") / 2**64
    return u < share


def signature_suffix(canary: Canary) -> str:
    """What goes after an answer to sign it: a blank line, then the group's phrase."""
    return "\n\n" + canary.phrase


def append_signature(answer: str, canary: Canary) -> str:
    """``answer`` with the group's phrase as a closing line (an empty answer stays so)."""
    return answer.rstrip() + signature_suffix(canary) if answer.strip() else answer


def decoy_tool(canary: Canary, api: Api) -> dict[str, Any]:
    """The decoy tool definition in the API's own shape."""
    schema = {"type": "object", "properties": {"topic": {
        "type": "string", "description": "What to look up."}}, "required": ["topic"]}
    if api == "anthropic":
        return {"name": canary.tool_name, "description": canary.tool_description,
                "input_schema": schema}
    return {"type": "function", "function": {"name": canary.tool_name,
                                             "description": canary.tool_description,
                                             "parameters": schema}}


def add_decoy_tool(body: dict[str, Any], api: Api, canary: Canary) -> bool:
    """Append the decoy to a request's ``tools`` when it already lists tools (a request
    without tools is left alone); True when added."""
    tools = body.get("tools")
    if not isinstance(tools, list) or not tools:
        return False
    tools.append(decoy_tool(canary, api))
    return True


_NON_WORD = re.compile(r"[^a-z0-9_]+")


def normalize_text(text: str) -> str:
    """Lower case, every run of other characters one space (punctuation and line breaks
    do not hide a phrase)."""
    return " " + _NON_WORD.sub(" ", text.lower()).strip() + " "


@dataclass(frozen=True, slots=True)
class CanaryHit:
    group: str
    phrase_hits: int
    tool_hits: int
    examples: tuple[int, ...]

    @property
    def hits(self) -> int:
        return self.phrase_hits + self.tool_hits


@dataclass(frozen=True, slots=True)
class CanaryReport:
    """``named``: groups with at least ``min_hits`` outputs carrying their canaries;
    ``hits``: every group with any hit; ``ambiguous``: groups whose phrase core another
    checked group shares (a hit on it cannot tell them apart)."""

    outputs: int
    groups: int
    min_hits: int
    named: tuple[str, ...]
    hits: tuple[CanaryHit, ...]
    ambiguous: tuple[str, ...]


def canary_check(outputs: Iterable[str], canaries: Sequence[Canary], *, min_hits: int = 2
                 ) -> CanaryReport:
    """Which groups' canaries a suspect model's ``outputs`` carry.

    A group is named when at least ``min_hits`` outputs contain its phrase core or its
    decoy tool name. Each output counts once per group.
    """
    texts = [normalize_text(t) for t in outputs]
    by_core: dict[str, list[str]] = {}
    for c in canaries:
        by_core.setdefault(c.core, []).append(c.group)
    ambiguous = sorted(g for groups in by_core.values() if len(groups) > 1 for g in groups)
    hits: list[CanaryHit] = []
    for c in canaries:
        core, tool = f" {c.core.strip()} ", c.tool_name
        phrase_idx = {i for i, t in enumerate(texts) if core in t}
        tool_idx = {i for i, t in enumerate(texts) if tool in t} - phrase_idx
        if phrase_idx or tool_idx:
            hits.append(CanaryHit(c.group, len(phrase_idx), len(tool_idx),
                                  tuple(sorted(phrase_idx | tool_idx)[:5])))
    hits.sort(key=lambda h: (-h.hits, h.group))
    named = tuple(h.group for h in hits if h.hits >= min_hits)
    return CanaryReport(len(texts), len(canaries), min_hits, named, tuple(hits), tuple(ambiguous))


@dataclass(frozen=True, slots=True)
class Exposure:
    """``rank`` of the group's phrase among itself and ``candidates`` random phrases of the
    same grammar (1: the suspect prefers it to all of them); ``p_value`` = rank /
    (candidates + 1), exact when the suspect never saw the phrase."""

    group: str
    rank: int
    candidates: int
    p_value: float


def _split_phrase(phrase: str) -> tuple[str, str]:
    """(opener with its comma, the rest): "As a side note," and " amber herons ... tide." """
    opener, _, rest = phrase.partition(", ")
    return opener + ",", " " + rest


def canary_exposure(score: Callable[[str, Sequence[str]], Sequence[float]],
                    canaries: Sequence[Canary], *, candidates: int = 999, seed: int = 0,
                    reference: Callable[[str, Sequence[str]], Sequence[float]] | None = None
                    ) -> list[Exposure]:
    """With the suspect's weights: how much more likely does it find each group's phrase
    than random phrases of the same grammar? (the "exposure" of Carlini et al. 2019, "The
    Secret Sharer", as an exact rank test). ``score(opener, continuations)`` returns the
    suspect's log-probability of each continuation after the opener. A phrase is a uniform
    draw of its grammar, so for a suspect that never saw it, its rank among ``candidates``
    fresh draws is uniform: ``p_value`` is exact. Name a group only below ``alpha / groups``.

    ``reference``: the same for a model that never saw our canaries (the suspect's public
    base model, or our own): each phrase is then ranked by how much *more* likely the
    suspect finds it than the reference, which takes away how natural a phrase is anyway
    (some word pairs are simply likelier) and leaves what the suspect learned. Still exact:
    the issued phrase is a uniform draw whatever the two models are.
    """
    rng = random.Random(seed)
    out = []
    for canary in canaries:
        opener, own = _split_phrase(canary.phrase)
        others = [" " + _core(rng.choice(_ADJECTIVES), rng.choice(_NOUNS), rng.choice(_VERBS),
                              rng.choice(_OBJECTS)) + "." for _ in range(candidates)]
        phrases = [own, *others]
        scores = list(score(opener, phrases))
        if reference is not None:
            scores = [s - r for s, r in zip(scores, reference(opener, phrases), strict=True)]
        rank = 1 + sum(s >= scores[0] for s in scores[1:])
        out.append(Exposure(canary.group, rank, candidates, rank / (candidates + 1)))
    return out
