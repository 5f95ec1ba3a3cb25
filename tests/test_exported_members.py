"""Each stage's ``__init__`` re-exports exactly its public names, sorted."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import distillguard

STAGES = sorted(m.name for m in pkgutil.iter_modules(distillguard.__path__) if m.ispkg)


def _isort_key(name: str) -> tuple[int, str]:
    """Constants, then classes, then functions, each alphabetical (as ruff's RUF022 sorts)."""
    kind = 0 if name.isupper() else 1 if name[:1].isupper() else 2
    return kind, name


@pytest.mark.parametrize("stage", STAGES)
def test_all_is_sorted_and_resolves(stage: str) -> None:
    module = importlib.import_module(f"distillguard.{stage}")
    exported = module.__all__
    assert list(exported) == sorted(exported, key=_isort_key)
    for name in exported:
        assert hasattr(module, name), f"distillguard.{stage}.{name} is in __all__ but missing"


def test_every_stage_folder_exists() -> None:
    expected = {"logs", "signals", "behavior", "linkage", "verdict", "engines", "gateway",
                "intel", "safeguards", "sim", "evaluate", "dashboard"}
    assert expected <= set(STAGES)
