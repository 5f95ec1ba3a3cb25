"""Stages point one way (DESIGN.md): a stage imports only stages before it, and the
simulator imports no detector stage (it writes the exchange-log format and nothing else
of the detector's, so it cannot shape traffic around what the detector computes)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "distillguard"
# The pipeline stages, then what consumes them, in DESIGN.md's order, except that
# safeguards (output watermarks, canaries, reasoning summaries) sit before the gateway,
# which applies them per verdict.
ORDER = ["logs", "signals", "behavior", "linkage", "verdict", "safeguards", "engines", "gateway",
         "intel", "sim", "replay", "evaluate", "dashboard"]
ENGINE_LIBS = {"duckdb", "pyspark", "fastapi", "starlette", "redis", "httpx", "uvicorn"}
# The stages the simulator may use: the log format it writes.
SIM_MAY_IMPORT = {"logs", "sim"}


def _imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def _violations(package: Path = PACKAGE) -> list[str]:
    rows = []
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package).parts
        stage = parts[0] if len(parts) > 1 else None
        for name in _imports(path):
            top = name.split(".")
            if top[0] == "distillguard" and len(top) > 1:
                target = top[1]
                if stage in ORDER and target in ORDER and ORDER.index(target) > ORDER.index(stage):
                    rows.append(f"{path}: {stage} imports later stage {name}")
                if stage in ORDER and target == "cli":
                    rows.append(f"{path}: {stage} imports the command line {name}")
                if stage == "sim" and target in ORDER and target not in SIM_MAY_IMPORT:
                    rows.append(f"{path}: the simulator imports detector stage {name}")
            elif stage in {"signals", "behavior"} and top[0] in ENGINE_LIBS:
                rows.append(f"{path}: {stage} imports engine library {top[0]}")
    return rows


def test_no_stage_imports_a_later_stage_or_a_consumer() -> None:
    assert _violations() == []


def test_backward_and_simulator_imports_are_caught(tmp_path: Path) -> None:
    for stage, source in (("signals", "from distillguard.verdict import judge\n"),
                          ("sim", "import distillguard.signals.lexicon\n"),
                          ("sim", "from distillguard.logs.schema import MESSAGE_TYPE\n"),
                          ("behavior", "import duckdb\n")):
        folder = tmp_path / stage
        folder.mkdir(exist_ok=True)
        (folder / f"m{len(list(folder.iterdir()))}.py").write_text(source)
    found = _violations(tmp_path)
    assert len(found) == 3
    assert any("signals imports later stage distillguard.verdict" in v for v in found)
    assert any("simulator imports detector stage distillguard.signals.lexicon" in v
               for v in found)
    assert any("behavior imports engine library duckdb" in v for v in found)
