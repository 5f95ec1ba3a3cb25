"""The fixed task templates of legitimate applications and evaluation teams (package data)."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml

__all__ = ["FILLS", "LegitTemplates", "TaskTemplate", "load_templates", "read_data"]

FILLS = frozenset({"text", "answer", "transcript", "qa", "qa_pair", "code", "context", "question",
                   "sensitive"})


@dataclass(frozen=True)
class TaskTemplate:
    name: str
    system: str | None
    template: str
    fill: str
    output_tokens: float
    tools: tuple[str, ...] = ()
    image: bool = False


@dataclass(frozen=True)
class LegitTemplates:
    products: tuple[str, ...]
    languages: tuple[str, ...]
    apps: dict[str, TaskTemplate]
    eval: dict[str, TaskTemplate]


def read_data(name: str) -> dict[str, Any]:
    """A YAML file from ``distillguard/sim/data``."""
    text = resources.files("distillguard.sim").joinpath("data", name).read_text(encoding="utf-8")
    # libyaml's safe loader when PyYAML has it: the same data, several times faster.
    data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    assert isinstance(data, dict)
    return data


def _template(name: str, raw: dict[str, Any]) -> TaskTemplate:
    if raw["fill"] not in FILLS:
        msg = f"template {name!r}: unknown fill {raw['fill']!r} (known: {', '.join(sorted(FILLS))})"
        raise ValueError(msg)
    return TaskTemplate(name=name, system=raw.get("system"), template=raw["template"],
                        fill=raw["fill"], output_tokens=float(raw.get("output_tokens", 200)),
                        tools=tuple(raw.get("tools") or ()), image=bool(raw.get("image", False)))


def load_templates() -> LegitTemplates:
    data = read_data("legit_templates.yaml")
    return LegitTemplates(
        products=tuple(data["products"]), languages=tuple(data["languages"]),
        apps={k: _template(k, v) for k, v in data["apps"].items()},
        eval={k: _template(k, v) for k, v in data["eval"].items()})
