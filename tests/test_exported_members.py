"""Each stage's ``__init__`` re-exports exactly its public names, sorted."""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

import pytest

import distillguard

STAGES = sorted(m.name for m in pkgutil.iter_modules(distillguard.__path__) if m.ispkg)


def _isort_key(name: str) -> tuple[int, str]:
    """Constants, then classes, then functions, each alphabetical (as ruff's RUF022 sorts)."""
    kind = 0 if name.isupper() else 1 if name[:1].isupper() else 2
    return kind, name


def _public_names(module: ModuleType) -> set[str]:
    """Names the module binds that a user may import: not private, not a submodule
    (importing one binds it on its package), not ``from __future__`` features."""
    return {name for name, value in vars(module).items()
            if not name.startswith("_") and not isinstance(value, ModuleType)
            and name != "annotations"}


@pytest.mark.parametrize("stage", STAGES)
def test_all_is_sorted_and_equals_the_public_names(stage: str) -> None:
    module = importlib.import_module(f"distillguard.{stage}")
    exported = module.__all__
    assert list(exported) == sorted(exported, key=_isort_key)
    assert len(set(exported)) == len(exported), "a name is listed twice"
    assert set(exported) == _public_names(module)


def test_every_stage_folder_exists() -> None:
    expected = {"logs", "signals", "behavior", "linkage", "verdict", "engines", "gateway",
                "intel", "safeguards", "sim", "evaluate", "dashboard"}
    assert expected <= set(STAGES)
