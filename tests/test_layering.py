"""Stages point one way (DESIGN.md): a stage imports only stages before it."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "distillguard"
# The pipeline stages, then what consumes them, in DESIGN.md's order, except that
# safeguards (output watermarks, canaries, reasoning summaries) sit before the gateway,
# which applies them per verdict.
ORDER = ["logs", "signals", "behavior", "linkage", "verdict", "safeguards", "engines", "gateway",
         "intel", "sim", "evaluate", "dashboard"]
ENGINE_LIBS = {"duckdb", "pyspark", "fastapi", "starlette", "redis", "httpx", "uvicorn"}


def _imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def _violations() -> list[str]:
    rows = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).parts
        stage = parts[0] if len(parts) > 1 else None
        for name in _imports(path):
            top = name.split(".")
            if top[0] == "distillguard" and len(top) > 1:
                target = top[1]
                if stage in ORDER and target in ORDER and ORDER.index(target) > ORDER.index(stage):
                    rows.append(f"{path}: {stage} imports later stage {name}")
                if stage in ORDER and target == "cli":
                    rows.append(f"{path}: {stage} imports the command line {name}")
            elif stage in {"signals", "behavior"} and top[0] in ENGINE_LIBS:
                rows.append(f"{path}: {stage} imports engine library {top[0]}")
    return rows


def test_no_stage_imports_a_later_stage_or_a_consumer() -> None:
    assert _violations() == []
