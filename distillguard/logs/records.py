"""Validate one exchange-log record (a parsed JSON object) against format v1.

This is the per-row path: JSON Lines must be checked line by line anyway so
that each bad line can be quarantined with its number. Parquet files take the
vectorized path in ``logs.parquet`` and fall back here only for batches whose
columns cannot be cast.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from distillguard.errors import RecordError
from distillguard.logs.bounds import (
    INT_RANGES,
    int_out_of_range,
    latest_allowed_ms,
    too_late_reason,
)
from distillguard.logs.schema import MESSAGE_ROLES, SPEC_FIELDS, TS_MAX_MS, TS_MIN_MS

__all__ = ["FIELD_KINDS", "KNOWN_FIELDS", "parse_timestamp_ms", "unknown_fields", "validate_record"]

FIELD_KINDS: dict[str, str] = {
    "request_id": "str",
    "ts": "ts",
    "account_id": "str",
    "model": "str",
    "messages": "messages",
    "system": "str",
    "org_id": "str",
    "api_key_id": "str",
    "account_created": "ts",
    "account_tier": "str",
    "verified": "bool",
    "payment_fingerprint": "str",
    "ip": "str",
    "asn": "int",
    "country": "str",
    "user_agent": "str",
    "client_fingerprint": "str",
    "tools": "str_list",
    "has_image": "bool",
    "conversation_id": "str",
    "response": "str",
    "reasoning": "str",
    "input_tokens": "int",
    "output_tokens": "int",
    "status": "int",
}
assert tuple(FIELD_KINDS) == tuple(f.name for f in SPEC_FIELDS)

KNOWN_FIELDS = frozenset(FIELD_KINDS)
_REQUIRED = frozenset(f.name for f in SPEC_FIELDS if not f.nullable)
_FIELD_ITEMS = tuple(FIELD_KINDS.items())
_INT64_MAX = 2**63 - 1
_TYPE_WORDS = {
    "str": "a string",
    "ts": "an RFC 3339 string or epoch milliseconds",
    "bool": "true or false",
    "int": "an integer",
    "messages": "an array of {role, content}",
    "str_list": "an array of strings",
}


def parse_timestamp_ms(value: Any) -> int:
    """Return epoch milliseconds for an RFC 3339 string or an epoch-ms integer.

    A string without an offset is read as UTC. Raises ``ValueError`` for
    anything else, or for an instant outside 2000..2200.

    >>> parse_timestamp_ms("2026-03-02T16:00:00Z")
    1772467200000
    >>> parse_timestamp_ms(1772467200000)
    1772467200000
    """
    if isinstance(value, bool):
        raise ValueError("boolean is not a timestamp")
    if isinstance(value, int):
        ms = value
    elif isinstance(value, str):
        dt = datetime.fromisoformat(value)
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        ms = round(dt.timestamp() * 1000)
    else:
        raise ValueError(f"{type(value).__name__} is not a timestamp")
    if not TS_MIN_MS <= ms < TS_MAX_MS:
        raise ValueError(f"{value!r} is outside 2000..2200 (seconds instead of milliseconds?)")
    return ms


def _wrong_type(name: str, kind: str, value: Any) -> RecordError:
    got = "null" if value is None else type(value).__name__
    msg = f"field '{name}' must be {_TYPE_WORDS[kind]}, got {got}"
    return RecordError("wrong_type", msg)


def _check_messages(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise _wrong_type("messages", "messages", value)
    if not value:
        raise RecordError("wrong_type", "field 'messages' is empty: it needs the new user turn")
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            msg = f"messages[{i}] must be an object {{role, content}}, got {type(item).__name__}"
            raise RecordError("wrong_type", msg)
        role = item.get("role")
        if role not in MESSAGE_ROLES:
            msg = f"messages[{i}].role must be one of user, assistant, tool; got {role!r}"
            raise RecordError("wrong_type", msg)
        if not isinstance(item.get("content"), str):
            got = type(item.get("content")).__name__
            raise RecordError("wrong_type", f"messages[{i}].content must be a string, got {got}")
    return value


def validate_record(obj: Any, latest_ms: int | None = None) -> tuple[list[Any], str | None]:
    """Check one parsed record; return its values in spec order and its extras.

    Values come back ready for Arrow: timestamps as epoch milliseconds, absent
    or null optional fields as ``None``. Unknown fields are returned as one JSON
    object text (kept, never rejected). Raises ``RecordError`` naming the first
    problem found. ``latest_ms`` is the bound of ``bounds.latest_allowed_ms``
    (readers compute it once per file; by default it is computed now).
    """
    if latest_ms is None:
        latest_ms = latest_allowed_ms()
    if not isinstance(obj, dict):
        msg = f"record must be a JSON object, got {type(obj).__name__}"
        raise RecordError("not_an_object", msg)
    values: list[Any] = []
    append = values.append
    for name, kind in _FIELD_ITEMS:
        value = obj.get(name)
        if value is None:
            if name in _REQUIRED:
                raise RecordError("missing_field", f"required field '{name}' is missing")
            append(None)
            continue
        if kind == "str":
            if value.__class__ is not str:
                raise _wrong_type(name, kind, value)
        elif kind == "ts":
            try:
                value = parse_timestamp_ms(value)
            except ValueError as exc:
                msg = f"field '{name}' is not a valid timestamp: {exc}"
                raise RecordError("bad_timestamp", msg) from exc
            if value >= latest_ms:
                raise RecordError("out_of_range", too_late_reason(name, value, latest_ms))
        elif kind == "int":
            if value.__class__ is not int or not -_INT64_MAX <= value <= _INT64_MAX:
                raise _wrong_type(name, kind, value)
            if name in INT_RANGES:
                problem = int_out_of_range(name, value)
                if problem:
                    raise RecordError("out_of_range", problem)
        elif kind == "bool":
            if value.__class__ is not bool:
                raise _wrong_type(name, kind, value)
        elif kind == "messages":
            value = _check_messages(value)
        elif kind == "str_list" and (
            not isinstance(value, list) or any(v.__class__ is not str for v in value)
        ):
            raise _wrong_type(name, kind, value)
        append(value)
    return values, unknown_fields(obj)


def unknown_fields(obj: dict[str, Any]) -> str | None:
    """The fields of record ``obj`` that the format does not name, as one JSON object text."""
    if obj.keys() <= KNOWN_FIELDS:
        return None
    return orjson.dumps({k: v for k, v in obj.items() if k not in KNOWN_FIELDS}).decode()
