"""The lexicon of techniques and capabilities (``signals/data/lexicon.yaml``).

The packaged lexicon is the one list of technique names (``TECHNIQUES``) and
capabilities: the signal columns, the per-account SQL, the verdict's evidence,
the gateway's counters and the reasons' wording all read it, so adding a
technique is one lexicon entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from distillguard.errors import RuleValidationError
from distillguard.validation import TEXT, ListOf, MappingOf, Options, Section, read_rules_file, validate

__all__ = ["TECHNIQUES", "AttackPattern", "Lexicon", "TechniquePatterns", "load_lexicon"]


@dataclass(frozen=True)
class AttackPattern:
    """How threat-intel exports name a technique: a title, a description, ATLAS ids."""

    title: str
    description: str
    atlas: tuple[str, ...]


@dataclass(frozen=True)
class TechniquePatterns:
    """One technique's patterns, each list joined into one case-insensitive alternation.

    ``reason`` completes "N% of sampled requests ..." in findings; ``attack_pattern``
    names the technique as shared threat intelligence does (title, description and
    MITRE ATLAS technique ids).
    """

    name: str
    description: str
    reason: str
    strong: str
    weak: str
    attack_pattern: AttackPattern


@dataclass(frozen=True)
class Lexicon:
    techniques: tuple[TechniquePatterns, ...]
    capabilities: tuple[tuple[str, str], ...]

    @property
    def technique_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.techniques)

    @property
    def technique_reasons(self) -> dict[str, str]:
        return {t.name: t.reason for t in self.techniques}


_SCHEMA = Section({
    "version": Options((1,)),
    "techniques": MappingOf(TEXT, Section(
        {"description": TEXT, "reason": TEXT, "strong": ListOf(TEXT), "weak": ListOf(TEXT),
         "attack_pattern": Section({"title": TEXT, "description": TEXT,
                                    "atlas": ListOf(TEXT)})},
        optional=frozenset({"strong", "weak"}))),
    "capabilities": MappingOf(TEXT, TEXT),
})


def _alternation(patterns: list[str]) -> str:
    return "(?i)" + "|".join(f"(?:{p})" for p in patterns) if patterns else ""


def _parse(data: dict[str, Any], origin: str) -> Lexicon:
    validate(data, _SCHEMA, origin)
    techniques = tuple(
        TechniquePatterns(name, spec["description"], spec["reason"],
                          _alternation(spec.get("strong", [])), _alternation(spec.get("weak", [])),
                          AttackPattern(spec["attack_pattern"]["title"],
                                        spec["attack_pattern"]["description"],
                                        tuple(spec["attack_pattern"]["atlas"])))
        for name, spec in data["techniques"].items())
    capabilities = tuple((name, "(?i)" + pattern) for name, pattern in data["capabilities"].items())
    return Lexicon(techniques, capabilities)


@lru_cache(maxsize=8)
def load_lexicon(path: str | Path | None = None) -> Lexicon:
    """Load a lexicon file; the packaged default when ``path`` is None.

    A file of its own may change patterns and wording, not the names: every
    table of signals has one column per packaged technique.
    """
    data, origin = read_rules_file(path, what="lexicon", package="distillguard.signals",
                                   packaged="data/lexicon.yaml")
    lexicon = _parse(data, origin)
    if path is not None:
        packaged = load_lexicon()
        for what, own, known in (
                ("techniques", lexicon.technique_names, packaged.technique_names),
                ("capabilities", tuple(n for n, _ in lexicon.capabilities),
                 tuple(n for n, _ in packaged.capabilities))):
            if own != known:
                msg = (f"The '{what}' of {origin} must name {', '.join(known)} in this order "
                       f"(the signal tables have them as columns and labels). Got "
                       f"{', '.join(own)} instead.")
                raise RuleValidationError(msg)
    return lexicon


TECHNIQUES: tuple[str, ...] = load_lexicon().technique_names
"""The technique names, in the packaged lexicon's order."""
