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


def test_campaign_purity_weighs_each_campaign_by_its_exchanges() -> None:
    # C1: operator a (90 + 10 exchanges) with b (50) and a legitimate account (50) inside;
    # C2: b alone (300). C1 purity 100/200, C2 300/300; together (100 + 300) / 500.
    labels = {"a1": "a", "a2": "a", "b1": "b", "b2": "b", "l1": None, "l2": None}
    findings = _findings([("a1", "extraction", "C1"), ("a2", "review", "C1"),
                          ("b1", "extraction", "C1"), ("l1", "extraction", "C1"),
                          ("b2", "extraction", "C2")])
    exchanges = {"a1": 90, "a2": 10, "b1": 50, "l1": 50, "b2": 300, "l2": 7}
    purity = evaluate_findings(findings, labels, exchanges=exchanges)["campaign_purity"]
    assert purity["weighting"] == "exchanges"
    assert purity["campaigns"]["C1"] == {"operator": "a", "exchanges": 200, "purity": 0.5}
    assert purity["campaigns"]["C2"]["purity"] == 1.0
    assert purity["purity"] == 0.8


def test_legitimate_accounts_are_never_a_campaigns_majority() -> None:
    labels = {"a1": "a", "l1": None, "l2": None}
    findings = _findings([("a1", "extraction", "C1"), ("l1", "review", "C1"),
                          ("l2", "review", "C1")])
    m = evaluate_findings(findings, labels, exchanges={"a1": 10, "l1": 500, "l2": 490})
    assert m["campaign_purity"]["campaigns"]["C1"]["operator"] == "a"
    assert m["campaign_purity"]["purity"] == 0.01
    only_legit = evaluate_findings(_findings([("l1", "review", "C9")]), labels)
    assert only_legit["campaign_purity"]["campaigns"]["C9"] == {
        "operator": None, "exchanges": 1, "purity": 0.0}


def test_without_exchange_counts_purity_weighs_accounts() -> None:
    labels = {"a1": "a", "a2": "a", "a3": "a", "b1": "b"}
    findings = _findings([("a1", "extraction", "C1"), ("a2", "extraction", "C1"),
                          ("a3", "extraction", "C1"), ("b1", "extraction", "C1")])
    purity = evaluate_findings(findings, labels)["campaign_purity"]
    assert purity["weighting"] == "accounts"
    assert purity["purity"] == 0.75


def test_share_of_each_operators_accounts_in_its_largest_campaign() -> None:
    # a: 4 accounts, 2 in C1, 1 in C2, 1 missed -> 2/4; b: 2 of 2 in C1 (merged with a) -> 1.0;
    # c: never found -> 0 and no campaign
    labels = {"a1": "a", "a2": "a", "a3": "a", "a4": "a", "b1": "b", "b2": "b", "c1": "c"}
    findings = _findings([("a1", "extraction", "C1"), ("a2", "review", "C1"),
                          ("a3", "extraction", "C2"), ("b1", "extraction", "C1"),
                          ("b2", "extraction", "C1"), ("c1", "review", None)])
    actors = evaluate_findings(findings, labels)["actors"]
    assert (actors["a"]["largest_campaign"], actors["a"]["largest_campaign_share"]) == ("C1", 0.5)
    assert (actors["b"]["largest_campaign"], actors["b"]["largest_campaign_share"]) == ("C1", 1.0)
    assert (actors["c"]["largest_campaign"], actors["c"]["largest_campaign_share"]) == (None, 0.0)
