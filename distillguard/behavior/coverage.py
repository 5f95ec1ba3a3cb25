"""Which optional fields the scanned exchanges carry, and what the scan cannot compute
without the ones they lack.

A log from another source (OpenTelemetry spans, a LiteLLM proxy, batch files) carries
no payment fingerprint or account creation time. The scan still runs: each signal
that needs a missing field is reported as not computed, by name, instead of scoring
as if every account had none.
"""

from __future__ import annotations

from typing import Any

from distillguard.logs.schema import OPTIONAL_FIELDS

__all__ = ["EXCHANGES_SUMMARY_COLUMNS", "EXCHANGES_SUMMARY_SQL", "SIGNAL_NEEDS",
           "field_coverage"]

_COUNTED = tuple(f.name for f in OPTIONAL_FIELDS)
# What was read, in one pass over the exchanges: how many, their accounts, the time
# they span, and how many carry each optional field (``has_image`` counts true only:
# a source that cannot say leaves it null, as does one with no image).
EXCHANGES_SUMMARY_COLUMNS = ("exchanges", "accounts", "first", "last", *_COUNTED)
EXCHANGES_SUMMARY_SQL = (
    "SELECT count(*) AS exchanges, count(DISTINCT account_id) AS accounts, "
    "min(ts) AS first, max(ts) AS last, "
    + ", ".join(f"count({name}) AS {name}" for name in _COUNTED) + " FROM exchanges")

# What the scan computes from each optional field: when no exchange carries any of a
# signal's fields, the signal is not computed (the evidence stands without it).
SIGNAL_NEEDS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("owners", ("org_id", "payment_fingerprint"),
     "template owners are organizations, else payment methods: without either, each "
     "account counts as an owner of its own, so one operator's accounts look like many"),
    ("payment_links", ("payment_fingerprint",),
     "accounts sharing a payment method are not linked; campaigns list no payment "
     "fingerprints; partners' payment indicators match nothing"),
    ("creation_batches", ("account_created",),
     "campaigns' accounts opened in batches are not found"),
    ("infrastructure_indicators", ("ip", "asn", "client_fingerprint"),
     "campaigns list no IPs, networks or client fingerprints; partners' infrastructure "
     "indicators match nothing"),
    ("system_prompts", ("system",),
     "templates are found in the conversation only, not in system prompts"),
    ("tool_definitions", ("tools",),
     "tool use is read from the prompt text only, not from tool definitions"),
    ("tier_and_verification", ("account_tier", "verified"),
     "reasons say nothing of the account's tier or verification"),
)


def field_coverage(row: dict[str, Any]) -> dict[str, Any]:
    """The coverage summary from ``EXCHANGES_SUMMARY_SQL``'s row: the optional fields no
    exchange carries, the share of exchanges carrying each of the others, and the
    signals not computed (name, the fields they need, what is lost).

    >>> row = {"exchanges": 4, **dict.fromkeys(_COUNTED, 0), "ip": 4, "system": 2}
    >>> c = field_coverage(row)
    >>> c["fields_partial"], "payment_fingerprint" in c["fields_missing"]
    ({'system': 0.5}, True)
    >>> [s["signal"] for s in c["signals_not_computed"]][:2]
    ['owners', 'payment_links']
    """
    exchanges = row["exchanges"] or 0
    if not exchanges:
        return {"fields_missing": [], "fields_partial": {}, "signals_not_computed": []}
    missing = [name for name in _COUNTED if not row[name]]
    partial = {name: round(row[name] / exchanges, 4) for name in _COUNTED
               if 0 < row[name] < exchanges}
    not_computed = [{"signal": signal, "needs": list(fields), "effect": effect}
                    for signal, fields, effect in SIGNAL_NEEDS
                    if all(name in missing for name in fields)]
    return {"fields_missing": missing, "fields_partial": partial,
            "signals_not_computed": not_computed}
