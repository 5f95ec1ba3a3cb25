from __future__ import annotations

from distillguard.evaluate import evaluate_findings


def _findings(rows: list[tuple[str, str, str | None]]) -> dict:
    return {"accounts": [{"account_id": a, "verdict": v, "campaign_id": c} for a, v, c in rows],
            "campaigns": []}


def test_precision_recall_and_per_archetype_false_positives() -> None:
    labels = {"x1": "hydra", "x2": "hydra", "x3": "reasoning", "l1": None, "l2": None}
    findings = _findings([("x1", "extraction", "C1"), ("x2", "review", "C1"),
                          ("l1", "extraction", "C1")])
    m = evaluate_findings(findings, labels, archetypes={"l1": "eval", "l2": "chat"},
                          exchanges={"x1": 90, "x2": 10, "x3": 100})
    assert m["extraction"]["precision"] == 0.5
    assert m["extraction"]["recall"] == round(1 / 3, 6)
    assert m["extraction"]["exchange_recall"] == 0.45
    assert m["extraction_or_review"]["recall"] == round(2 / 3, 6)
    assert m["extraction"]["legit_by_archetype"]["eval"]["flagged"] == 1
    assert m["actors"]["hydra"]["largest_group_share"] == 1.0
    assert m["actors"]["reasoning"]["recall"] == 0.0
    assert m["campaign_groups"]["C1"]["purity"] == round(2 / 3, 6)


def test_nothing_flagged_has_no_precision() -> None:
    m = evaluate_findings(_findings([]), {"x": "hydra", "y": None})
    assert m["extraction"]["precision"] is None and m["extraction"]["recall"] == 0.0
