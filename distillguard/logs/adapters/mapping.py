"""Which attribute or key of a source gives each exchange-log field.

Each source has a table (``OTLP_FIELDS``, ``LITELLM_FIELDS``, ``OPENAI_BATCH_FIELDS``):
for every field copied from one value of the source, the places to look, in order;
the first one present wins. The fields a reader derives (request id, time, the
conversation, the answer) are documented with each reader and in docs/adapters.md.

A table can be changed from the command line (``--map account_id=tenant.id``): the
places given replace the table's for that field. For OTLP a place is an attribute
key, of the span or, written ``resource.KEY``, of its resource; for JSON sources it
is a dotted path into the record (``metadata.user_api_key_user_id``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from distillguard.errors import InputError, RecordError
from distillguard.logs.records import FIELD_KINDS

__all__ = ["LITELLM_FIELDS", "MAPPABLE_FIELDS", "OPENAI_BATCH_FIELDS", "OTLP_FIELDS",
           "RESOURCE_PREFIX", "FieldMap", "coerce", "json_path", "missing_account_error",
           "parse_field_map"]

# Fields whose value is copied from one place of the source (the others are derived).
MAPPABLE_FIELDS = ("account_id", "model", "org_id", "api_key_id", "account_created",
                   "account_tier", "verified", "payment_fingerprint", "ip", "asn", "country",
                   "user_agent", "client_fingerprint", "conversation_id", "input_tokens",
                   "output_tokens", "status")
RESOURCE_PREFIX = "resource."
# Attributes the gateway writes for fields that have no OpenTelemetry name
# (gateway/otlp_export.py); read last, so that a standard attribute wins.
GATEWAY_NAMESPACE = "distillguard."

_OTLP_STANDARD: dict[str, tuple[str, ...]] = {
    "account_id": ("enduser.id", "user.id", "resource.enduser.id", "resource.user.id"),
    "model": ("gen_ai.request.model", "gen_ai.response.model"),
    "ip": ("client.address",),
    "user_agent": ("user_agent.original",),
    "conversation_id": ("gen_ai.conversation.id",),
    "input_tokens": ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens"),
    "output_tokens": ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens"),
    "status": ("http.response.status_code",),
}
OTLP_FIELDS: dict[str, tuple[str, ...]] = {
    name: (*_OTLP_STANDARD.get(name, ()), GATEWAY_NAMESPACE + name) for name in MAPPABLE_FIELDS}

LITELLM_FIELDS: dict[str, tuple[str, ...]] = {
    "account_id": ("metadata.user_api_key_user_id", "metadata.user_api_key_team_id",
                   "end_user", "metadata.user_api_key_end_user_id"),
    "model": ("model_group", "model"),
    "org_id": ("metadata.user_api_key_org_id",),
    "api_key_id": ("metadata.user_api_key_hash",),
    "ip": ("metadata.requester_ip_address", "requester_ip_address"),
    "user_agent": ("metadata.user_agent",),
    "input_tokens": ("prompt_tokens",),
    "output_tokens": ("completion_tokens",),
}

OPENAI_BATCH_FIELDS: dict[str, tuple[str, ...]] = {
    "account_id": ("account_id", "body.safety_identifier", "body.user",
                   "body.metadata.account_id"),
    "model": ("body.model", "response.body.model"),
    "org_id": ("org_id", "body.metadata.org_id"),
    "ip": ("ip",),
    "user_agent": ("user_agent",),
    "conversation_id": ("body.metadata.conversation_id",),
    "input_tokens": ("response.body.usage.prompt_tokens", "response.body.usage.input_tokens"),
    "output_tokens": ("response.body.usage.completion_tokens",
                      "response.body.usage.output_tokens"),
    "status": ("response.status_code",),
}


def json_path(obj: Any, path: str) -> Any:
    """The value at dotted ``path`` in ``obj``, or None.

    >>> json_path({"metadata": {"user_api_key_user_id": "u1"}}, "metadata.user_api_key_user_id")
    'u1'
    >>> json_path({"metadata": None}, "metadata.user_api_key_user_id") is None
    True
    """
    for key in path.split("."):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def coerce(name: str, value: Any) -> Any:
    """``value`` as the type the format wants for field ``name``, where the source's type
    differs only in form (a numeric id, digits in a string); anything else unchanged, for
    the record's validation to reject with its reason.

    >>> coerce("account_id", 42), coerce("asn", "64500"), coerce("verified", "true")
    ('42', 64500, True)
    """
    kind = FIELD_KINDS[name]
    if kind == "str" and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if kind == "int" and isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    if kind == "bool" and isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return value


@dataclass(frozen=True, slots=True)
class FieldMap:
    """For each mappable field, the places of the source to read it from, in order."""

    places: Mapping[str, tuple[str, ...]]

    def with_overrides(self, overrides: Mapping[str, tuple[str, ...]]) -> FieldMap:
        return FieldMap({**self.places, **overrides})

    def pick(self, lookup: Callable[[str], Any]) -> dict[str, Any]:
        """Each field's first value found by ``lookup(place)``, coerced; absent fields left out."""
        found: dict[str, Any] = {}
        for name, places in self.places.items():
            for place in places:
                value = lookup(place)
                if value is not None:
                    found[name] = coerce(name, value)
                    break
        return found

    def used_places(self) -> frozenset[str]:
        return frozenset(p for places in self.places.values() for p in places)


def parse_field_map(items: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """``["account_id=tenant.id,resource.tenant.id"]`` as ``{"account_id": (...)}``.

    >>> parse_field_map(["account_id=tenant.id,resource.tenant.id"])
    {'account_id': ('tenant.id', 'resource.tenant.id')}
    """
    found: dict[str, tuple[str, ...]] = {}
    for item in items:
        name, sep, places = item.partition("=")
        name = name.strip()
        if not sep or not places.strip():
            msg = f"--map wants FIELD=PLACE[,PLACE...], got {item!r}"
            raise InputError(msg)
        if name not in MAPPABLE_FIELDS:
            msg = (f"--map: {name!r} is not a field that is read from one place of a source; "
                   f"one of {', '.join(MAPPABLE_FIELDS)}")
            raise InputError(msg)
        found[name] = tuple(p.strip() for p in places.split(",") if p.strip())
    return found


def missing_account_error(field_map: FieldMap, where: str) -> RecordError:
    """The reason a record without an account is quarantined, naming the places looked at."""
    places = ", ".join(field_map.places.get("account_id", ())) or "none"
    return RecordError("missing_field", f"required field 'account_id' is missing: {where} has "
                       f"none of {places}; name the place that holds the account with "
                       "--map account_id=PLACE")
