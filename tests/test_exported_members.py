"""Each stage's ``__init__`` re-exports exactly its public names, sorted."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import distillguard

STAGES = sorted(m.name for m in pkgutil.iter_modules(distillguard.__path__) if m.ispkg)


@pytest.mark.parametrize("stage", STAGES)
def test_all_is_sorted_and_resolves(stage: str) -> None:
    module = importlib.import_module(f"distillguard.{stage}")
    exported = module.__all__
    assert list(exported) == sorted(exported)
    for name in exported:
        assert hasattr(module, name), f"distillguard.{stage}.{name} is in __all__ but missing"


def test_every_stage_folder_exists() -> None:
    expected = {"logs", "signals", "behavior", "linkage", "verdict", "engines", "gateway",
                "intel", "safeguards", "sim", "evaluate", "dashboard"}
    assert expected <= set(STAGES)
