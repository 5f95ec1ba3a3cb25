"""STIX patterns for the indicator kinds distillguard shares, and back.

Each exported indicator carries one comparison, so a partner's tools read it
without evaluating boolean logic. On import, a pattern is matched when it is
a disjunction (``OR``) of plain comparisons (``=``, ``IN``, ``ISSUBSET``) on
the paths below; anything else (``AND`` across objects, qualifiers such as
``REPEATS``, negations, file hashes ...) is a valid pattern we cannot match
on API traffic, and is counted as such rather than guessed at.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from stix2 import patterns as sp
from stix2.pattern_visitor import create_pattern_object

__all__ = ["MAX_PATTERN_CHARS", "indicator_pattern", "pattern_values", "template_unit_hex",
           "template_unit_int"]

MAX_PATTERN_CHARS = 20_000
_UNESCAPE = re.compile(r"\\(.)")

# (object type, property) -> kind
_PATHS = {
    ("ipv4-addr", "value"): "ip",
    ("ipv6-addr", "value"): "ip",
    ("autonomous-system", "number"): "asn",
    ("x-tls-client-fingerprint", "value"): "client_fingerprint",
    ("x-llm-prompt-template", "unit_hash"): "template",
    ("x-payment-instrument", "keyed_hash"): "payment",
}


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def indicator_pattern(kind: str, value: str | int) -> str:
    """The STIX pattern of one value of ``kind`` (``verdict.INTEL_KINDS``).

    >>> indicator_pattern("subnet", "198.51.100.0/24")
    "[ipv4-addr:value ISSUBSET '198.51.100.0/24']"
    >>> indicator_pattern("asn", 64500)
    '[autonomous-system:number = 64500]'
    """
    if kind in ("ip", "subnet"):
        network = ipaddress.ip_network(str(value), strict=False)
        family = "ipv4-addr" if network.version == 4 else "ipv6-addr"
        if kind == "ip":
            return f"[{family}:value = {_quote(str(network.network_address))}]"
        return f"[{family}:value ISSUBSET {_quote(str(network))}]"
    if kind == "asn":
        return f"[autonomous-system:number = {int(value)}]"
    path = next(f"{t}:{p}" for (t, p), k in _PATHS.items() if k == kind)
    return f"[{path} = {_quote(str(value))}]"


def _comparisons(node: Any) -> list[Any] | None:
    """The comparisons of a pure disjunction, else None."""
    if isinstance(node, sp.ObservationExpression):
        return _comparisons(node.operand)
    if isinstance(node, sp.OrObservationExpression | sp.OrBooleanExpression):
        out: list[Any] = []
        for operand in node.operands:
            part = _comparisons(operand)
            if part is None:
                return None
            out += part
        return out
    if isinstance(node, sp.EqualityComparisonExpression | sp.IsSubsetComparisonExpression
                  | sp.InComparisonExpression) and not node.negated:
        return [node]
    return None


def _constants(rhs: Any) -> list[Any]:
    """Constant values, string escapes (``\\'``, ``\\\\``) undone."""
    items = rhs.value if isinstance(rhs, sp.ListConstant) else [rhs]
    return [_UNESCAPE.sub(r"\1", c.value) if isinstance(c.value, str) else c.value
            for c in items]


def _value(kind: str, operator: str, raw: Any) -> tuple[str, str] | None:
    """(kind, normalized value), or None when the value does not fit the kind."""
    try:
        if kind == "ip":
            network = ipaddress.ip_network(str(raw), strict=False)
            if operator == "ISSUBSET" or network.num_addresses > 1:
                return "subnet", str(network)
            return "ip", str(network.network_address)
        if kind == "asn":
            return "asn", str(int(raw))
    except ValueError:
        return None
    if kind == "template":
        text = str(raw).lower()
        if len(text) != 16 or any(ch not in "0123456789abcdef" for ch in text):
            return None
        return kind, text
    return kind, str(raw)


def pattern_values(pattern: str) -> list[tuple[str, str]] | None:
    """The (kind, value) pairs a pattern lists, or None when we cannot match it.

    >>> pattern_values("[ipv4-addr:value = '203.0.113.7' OR autonomous-system:number = 64500]")
    [('ip', '203.0.113.7'), ('asn', '64500')]
    >>> pattern_values("[file:hashes.'SHA-256' = 'aa']") is None
    True
    """
    if len(pattern) > MAX_PATTERN_CHARS:
        return None
    try:
        tree = create_pattern_object(pattern, version="2.1")
    except (ValueError, TypeError, RecursionError, AttributeError):
        return None
    comparisons = _comparisons(tree)
    if not comparisons:
        return None
    out: list[tuple[str, str]] = []
    for c in comparisons:
        path = c.lhs
        if len(path.property_path) != 1:
            return None
        kind = _PATHS.get((path.object_type_name, path.property_path[0].property_name))
        if kind is None or (c.operator == "ISSUBSET" and kind != "ip"):
            return None
        for raw in _constants(c.rhs):
            value = _value(kind, c.operator, raw)
            if value is None:
                return None
            out.append(value)
    return out


def template_unit_hex(unit: int) -> str:
    """A template unit (signed 64-bit, as ``signals`` stores it) as 16 hex digits."""
    return f"{unit & ((1 << 64) - 1):016x}"


def template_unit_int(text: str) -> int:
    """16 hex digits back to the signed 64-bit unit ``signals`` stores."""
    unsigned = int(text, 16)
    return unsigned - (1 << 64) if unsigned >= 1 << 63 else unsigned
