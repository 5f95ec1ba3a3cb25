from __future__ import annotations

import pytest

from distillguard.errors import RecordError
from distillguard.logs import parse_timestamp_ms, validate_record
from tests.conftest import make_record

REQUIRED = ["request_id", "ts", "account_id", "model", "messages"]


def test_valid_record_comes_back_in_spec_order() -> None:
    values, extra = validate_record(make_record(7))
    assert values[0] == "r7"
    assert values[1] == 1772467200000
    assert values[4] == [{"role": "user", "content": "question 7"}]
    assert extra is None


@pytest.mark.parametrize("field", REQUIRED)
def test_missing_required_field_is_rejected(field: str) -> None:
    with pytest.raises(RecordError) as info:
        validate_record(make_record(**{field: None}))
    assert info.value.code == "missing_field"
    assert field in info.value.reason


@pytest.mark.parametrize(("field", "bad"), [
    ("request_id", 17),
    ("ts", [2026]),
    ("ts", True),
    ("account_id", {"id": 1}),
    ("model", 3.5),
    ("messages", "hello"),
    ("messages", []),
    ("messages", [{"role": "robot", "content": "x"}]),
    ("messages", [{"role": "user", "content": 5}]),
    ("messages", ["just text"]),
])
def test_wrong_type_in_required_field_is_rejected(field: str, bad: object) -> None:
    with pytest.raises(RecordError) as info:
        validate_record(make_record(**{field: bad}))
    assert info.value.code in {"wrong_type", "bad_timestamp"}
    assert field in info.value.reason


@pytest.mark.parametrize(("field", "bad"), [
    ("input_tokens", "12"), ("input_tokens", True), ("verified", 1), ("asn", 1.5),
    ("tools", ["ok", 3]), ("system", ["a"]), ("account_created", "yesterday"),
])
def test_wrong_type_in_optional_field_is_rejected(field: str, bad: object) -> None:
    with pytest.raises(RecordError) as info:
        validate_record(make_record(**{field: bad}))
    assert field in info.value.reason


def test_null_optional_field_is_absent() -> None:
    values, _ = validate_record({**make_record(), "system": None})
    assert values[5] is None


def test_unknown_fields_are_kept_as_json() -> None:
    _, extra = validate_record(make_record(region="eu-west", latency_ms=41))
    assert extra == '{"region":"eu-west","latency_ms":41}'


def test_record_that_is_not_an_object_is_rejected() -> None:
    with pytest.raises(RecordError) as info:
        validate_record([1, 2])
    assert info.value.code == "not_an_object"


@pytest.mark.parametrize(("value", "expected"), [
    ("2026-03-02T16:00:00Z", 1772467200000),
    ("2026-03-02T17:00:00+01:00", 1772467200000),
    ("2026-03-02T16:00:00.250Z", 1772467200250),
    ("2026-03-02T16:00:00", 1772467200000),
    (1772467200000, 1772467200000),
])
def test_both_timestamp_forms_normalize_to_utc_ms(value: object, expected: int) -> None:
    assert parse_timestamp_ms(value) == expected


def test_epoch_seconds_are_caught_as_out_of_range() -> None:
    with pytest.raises(ValueError, match="milliseconds"):
        parse_timestamp_ms(1772467200)
