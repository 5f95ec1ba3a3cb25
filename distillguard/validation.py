"""Rules files (the detection policy, the gateway config) checked against a schema.

Not a pipeline stage: ``verdict.policy`` and ``gateway.config`` both load through
it. Constraints are data, as in scikit-learn's parameter validation
(``Interval(float, 0, 1)``, ``Options(...)``), and a ``Section`` lists the keys
a mapping may hold. ``validate`` walks a loaded document and stops at the first
problem with one line naming the file, the key and what is allowed:

>>> schema = Section({"campaign": Section({"min_share": Interval(float, 0, 1),
...                                        "min_owners": Interval(int, 1, None)})})
>>> validate({"campaign": {"min_share": 0.4, "min_owners": 3}}, schema, "policy p.yaml")
{'campaign': {'min_share': 0.4, 'min_owners': 3}}
>>> validate({"campaign": {"min_share": 1.5, "min_owners": 3}}, schema, "policy p.yaml")
Traceback (most recent call last):
...
distillguard.errors.RuleValidationError: The 'campaign.min_share' field of policy p.yaml \
must be a float in [0, 1]. Got 1.5 instead.
>>> validate({"campaign": {"min_share": 0.4, "min_owner": 3}}, schema, "policy p.yaml")
Traceback (most recent call last):
...
distillguard.errors.RuleValidationError: The 'campaign.min_owner' key of policy p.yaml \
is unknown; did you mean 'min_owners'? Known keys: min_share, min_owners.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol

import yaml

from distillguard.errors import RuleValidationError

__all__ = [
    "FLAG",
    "TEXT",
    "Constraint",
    "Interval",
    "Kind",
    "ListOf",
    "MappingOf",
    "Nullable",
    "Options",
    "Section",
    "merge_sections",
    "read_rules_file",
    "validate",
]


class Constraint(Protocol):
    """What a value must be: ``accepts`` tells, ``str()`` says it in words."""

    def accepts(self, value: Any) -> bool: ...


@dataclass(frozen=True)
class Interval:
    """A number of ``kind`` between ``low`` and ``high`` (None: unbounded).

    >>> str(Interval(int, 0, None)), str(Interval(float, 0, 1, closed="right"))
    ('an int >= 0', 'a float in (0, 1]')
    """

    kind: type[int] | type[float]
    low: float | None
    high: float | None
    closed: Literal["both", "left", "right", "neither"] = "both"

    def accepts(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, int if self.kind is int else int | float):
            return False
        if isinstance(value, float) and math.isnan(value):
            return False
        low_ok = self.low is None or (value >= self.low if self.closed in ("both", "left")
                                      else value > self.low)
        high_ok = self.high is None or (value <= self.high if self.closed in ("both", "right")
                                        else value < self.high)
        return low_ok and high_ok

    def __str__(self) -> str:
        kind = "an int" if self.kind is int else "a float"
        left_closed = self.closed in ("both", "left")
        right_closed = self.closed in ("both", "right")
        if self.low is not None and self.high is not None:
            return (f"{kind} in {'[' if left_closed else '('}{self.low:g}, {self.high:g}"
                    f"{']' if right_closed else ')'}")
        if self.low is not None:
            return f"{kind} {'>=' if left_closed else '>'} {self.low:g}"
        if self.high is not None:
            return f"{kind} {'<=' if right_closed else '<'} {self.high:g}"
        return kind


@dataclass(frozen=True)
class Options:
    """One of a fixed set of values."""

    values: tuple[Any, ...]

    def accepts(self, value: Any) -> bool:
        return any(value == v and type(value) is type(v) for v in self.values)

    def __str__(self) -> str:
        return "one of " + ", ".join(repr(v) for v in self.values)


@dataclass(frozen=True)
class Kind:
    """A value of one Python type, in words."""

    type: type
    words: str

    def accepts(self, value: Any) -> bool:
        return isinstance(value, self.type)

    def __str__(self) -> str:
        return self.words


TEXT = Kind(str, "a string")
FLAG = Kind(bool, "true or false")


class _Container:
    """A list or mapping (``holds``); ``validate`` checks its contents. ``words`` says
    what it is, with the dataclass's fields filled in."""

    holds: ClassVar[type] = object
    words: ClassVar[str] = ""

    def accepts(self, value: Any) -> bool:
        return isinstance(value, self.holds)

    def __str__(self) -> str:
        return self.words.format(**vars(self))


@dataclass(frozen=True)
class Nullable:
    """``inner``, or null."""

    inner: Any

    def accepts(self, value: Any) -> bool:
        return value is None or self.inner.accepts(value)

    def __str__(self) -> str:
        return f"{self.inner} or null"


@dataclass(frozen=True)
class ListOf(_Container):
    """A list whose items are each ``item``."""

    holds: ClassVar[type] = list
    words: ClassVar[str] = "a list (each item {item})"
    item: Any


@dataclass(frozen=True)
class MappingOf(_Container):
    """A mapping with keys ``keys`` and values ``values`` (names chosen by the file)."""

    holds: ClassVar[type] = Mapping
    words: ClassVar[str] = "a mapping (each value {values})"
    keys: Any
    values: Any


@dataclass(frozen=True)
class Section(_Container):
    """A mapping with these keys (each one required unless listed in ``optional``)."""

    holds: ClassVar[type] = Mapping
    fields: dict[str, Any]
    optional: frozenset[str] = field(default_factory=frozenset)

    @property
    def words(self) -> str:  # type: ignore[override]
        return "a mapping with keys " + ", ".join(self.fields)


def _fail(origin: str, key: str, constraint: Any, value: Any) -> RuleValidationError:
    msg = f"The '{key}' field of {origin} must be {constraint}. Got {value!r} instead."
    return RuleValidationError(msg)


def _unknown(origin: str, key: str, name: str, known: list[str]) -> RuleValidationError:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
    hint = f"; did you mean '{close[0]}'?" if close else "."
    msg = f"The '{key}' key of {origin} is unknown{hint} Known keys: {', '.join(known)}."
    return RuleValidationError(msg)


def _join(prefix: str, name: Any) -> str:
    return f"{prefix}.{name}" if prefix else str(name)


def validate(value: Any, constraint: Any, origin: str, key: str = "") -> Any:
    """Check ``value`` against ``constraint``; return it unchanged, or raise
    ``RuleValidationError`` on the first key that does not fit (one line: key,
    file, what is allowed, what was found)."""
    if not constraint.accepts(value):
        raise _fail(origin, key or "(top level)", constraint, value)
    if isinstance(constraint, Nullable) and value is not None:
        validate(value, constraint.inner, origin, key)
    elif isinstance(constraint, ListOf):
        for i, item in enumerate(value):
            validate(item, constraint.item, origin, f"{key}[{i}]")
    elif isinstance(constraint, MappingOf):
        for name, item in value.items():
            keys = constraint.keys
            if isinstance(keys, Options) and not keys.accepts(name):
                raise _unknown(origin, _join(key, name), str(name), [str(v) for v in keys.values])
            if not keys.accepts(name):
                raise _fail(origin, _join(key, name), f"a key that is {keys}", name)
            validate(item, constraint.values, origin, _join(key, name))
    elif isinstance(constraint, Section):
        for name in value:
            if name not in constraint.fields:
                raise _unknown(origin, _join(key, name), str(name), list(constraint.fields))
        for name, inner in constraint.fields.items():
            if name in value:
                validate(value[name], inner, origin, _join(key, name))
            elif name not in constraint.optional:
                msg = f"The '{_join(key, name)}' field of {origin} is missing; it must be {inner}."
                raise RuleValidationError(msg)
    return value


def read_rules_file(path: str | Path | None, *, what: str, package: str,
                    packaged: str) -> tuple[dict[str, Any], str]:
    """Load a rules file as a mapping: ``path``, or the file ``packaged`` inside ``package``.

    Returns the data and its origin for messages (``"policy my.yaml"``). A
    missing or unreadable file, text that is not YAML, or YAML that is not a
    mapping is a one-line ``RuleValidationError``.
    """
    if path is None:
        origin = f"{what} (packaged default)"
        text = resources.files(package).joinpath(packaged).read_text(encoding="utf-8")
    else:
        origin = f"{what} {path}"
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            msg = f"cannot read {origin}: {reason}"
            raise RuleValidationError(msg) from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        msg = f"{origin} is not valid YAML: {problem}{where}"
        raise RuleValidationError(msg) from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        msg = f"{origin} must be a YAML mapping of sections. Got {type(data).__name__} instead."
        raise RuleValidationError(msg)
    return data, origin


def merge_sections(data: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` merged onto ``data`` one level deep: a file names only the keys it changes
    within each section; any other value (a list, a nested mapping) replaces the default whole.

    >>> merge_sections({"a": {"x": 1, "y": 2}, "rules": [1]}, {"a": {"y": 3}, "rules": [2]})
    {'a': {'x': 1, 'y': 3}, 'rules': [2]}
    """
    merged = dict(data)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged
