"""The lexicon of techniques and capabilities (``signals/data/lexicon.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from distillguard.errors import RuleValidationError

__all__ = ["Lexicon", "TechniquePatterns", "load_lexicon"]


@dataclass(frozen=True)
class TechniquePatterns:
    """One technique's patterns, each list joined into one case-insensitive alternation."""

    name: str
    description: str
    strong: str
    weak: str


@dataclass(frozen=True)
class Lexicon:
    techniques: tuple[TechniquePatterns, ...]
    capabilities: tuple[tuple[str, str], ...]

    @property
    def technique_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.techniques)


def _alternation(patterns: list[str]) -> str:
    return "(?i)" + "|".join(f"(?:{p})" for p in patterns) if patterns else ""


def _parse(data: dict[str, Any], origin: str) -> Lexicon:
    try:
        techniques = tuple(
            TechniquePatterns(name, spec["description"], _alternation(spec.get("strong", [])),
                              _alternation(spec.get("weak", [])))
            for name, spec in data["techniques"].items())
        capabilities = tuple((name, "(?i)" + pattern)
                             for name, pattern in data["capabilities"].items())
    except (KeyError, TypeError, AttributeError) as exc:
        msg = f"lexicon {origin} does not match the lexicon schema: {exc!r}"
        raise RuleValidationError(msg) from exc
    return Lexicon(techniques, capabilities)


@lru_cache(maxsize=8)
def load_lexicon(path: str | None = None) -> Lexicon:
    """Load a lexicon file; the packaged default when ``path`` is None."""
    if path is None:
        text = resources.files("distillguard.signals").joinpath("data/lexicon.yaml").read_text()
        origin = "(packaged default)"
    else:
        text = Path(path).read_text(encoding="utf-8")
        origin = path
    return _parse(yaml.safe_load(text), origin)
