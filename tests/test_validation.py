"""The schema checks shared by the policy and gateway config loaders."""

from __future__ import annotations

from pathlib import Path

import pytest

from distillguard.errors import RuleValidationError
from distillguard.validation import (
    FLAG,
    TEXT,
    Interval,
    ListOf,
    MappingOf,
    Nullable,
    Options,
    Section,
    read_rules_file,
    validate,
)

SCHEMA = Section({
    "share": Interval(float, 0, 1),
    "count": Interval(int, 0, None),
    "mode": Options(("fast", "slow")),
    "name": Nullable(TEXT),
    "on": FLAG,
    "limits": MappingOf(Options(("a", "b")), Interval(int, 1, None)),
    "items": ListOf(Section({"x": Interval(float, 0, None, closed="neither")})),
}, optional=frozenset({"name", "on", "limits", "items"}))
GOOD = {"share": 0.5, "count": 3, "mode": "fast"}


def test_a_good_document_comes_back_unchanged() -> None:
    data = {**GOOD, "name": None, "on": True, "limits": {"a": 2}, "items": [{"x": 0.1}]}
    assert validate(data, SCHEMA, "policy p.yaml") is data


@pytest.mark.parametrize(("change", "message"), [
    ({"share": 1.5}, "The 'share' field of policy p.yaml must be a float in [0, 1]. "
                     "Got 1.5 instead."),
    ({"share": True}, "must be a float in [0, 1]. Got True instead."),
    ({"share": float("nan")}, "must be a float in [0, 1]. Got nan instead."),
    ({"count": -1}, "The 'count' field of policy p.yaml must be an int >= 0. Got -1 instead."),
    ({"count": 2.0}, "must be an int >= 0. Got 2.0 instead."),
    ({"mode": "quick"}, "must be one of 'fast', 'slow'. Got 'quick' instead."),
    ({"on": "yes"}, "The 'on' field of policy p.yaml must be true or false."),
    ({"limits": {"c": 2}}, "The 'limits.c' key of policy p.yaml is unknown. Known keys: a, b."),
    ({"limits": {"a": 0}}, "The 'limits.a' field of policy p.yaml must be an int >= 1."),
    ({"items": [{"x": 1}, {"x": 0}]}, "The 'items[1].x' field of policy p.yaml must be a float > 0."),
    ({"items": {"x": 1}}, "The 'items' field of policy p.yaml must be a list (each item a mapping"),
    ({"shares": 0.5}, "The 'shares' key of policy p.yaml is unknown; did you mean 'share'? "
                      "Known keys: share, count, mode, name, on, limits, items."),
])
def test_each_problem_is_one_line_naming_key_file_and_allowed_values(change: dict,
                                                                     message: str) -> None:
    with pytest.raises(RuleValidationError) as caught:
        validate({**GOOD, **change}, SCHEMA, "policy p.yaml")
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_missing_required_key_is_named() -> None:
    with pytest.raises(RuleValidationError, match=r"The 'mode' field of policy p.yaml is "
                                                  r"missing; it must be one of 'fast', 'slow'"):
        validate({"share": 0.5, "count": 1}, SCHEMA, "policy p.yaml")


@pytest.mark.parametrize(("text", "message"), [
    ("a: [1, 2\n", r"^policy .*p.yaml is not valid YAML: .* \(line 2, column 1\)$"),
    ("- 1\n- 2\n", r"^policy .*p.yaml must be a YAML mapping of sections. Got list instead.$"),
])
def test_a_file_that_is_no_yaml_mapping_is_one_line(tmp_path: Path, text: str,
                                                    message: str) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(RuleValidationError, match=message):
        read_rules_file(path, what="policy", package="distillguard.verdict",
                        packaged="data/policy.yaml")


def test_a_missing_or_unreadable_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(RuleValidationError,
                       match=r"^cannot read policy .*nowhere.yaml: No such file or directory$"):
        read_rules_file(tmp_path / "nowhere.yaml", what="policy", package="distillguard.verdict",
                        packaged="data/policy.yaml")
    with pytest.raises(RuleValidationError, match=r"^cannot read policy .*: Is a directory$"):
        read_rules_file(tmp_path, what="policy", package="distillguard.verdict",
                        packaged="data/policy.yaml")
    binary = tmp_path / "b.yaml"
    binary.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(RuleValidationError, match=r"^cannot read policy .*b.yaml: "):
        read_rules_file(binary, what="policy", package="distillguard.verdict",
                        packaged="data/policy.yaml")


def test_an_empty_file_is_an_empty_mapping(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("# nothing changed\n")
    data, origin = read_rules_file(path, what="policy", package="distillguard.verdict",
                                   packaged="data/policy.yaml")
    assert data == {} and origin == f"policy {path}"
