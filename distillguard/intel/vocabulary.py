"""The STIX 2.1 vocabulary distillguard shares in: its custom observables, its campaign
properties, the MITRE ATLAS techniques and the TLP markings.

Standard objects carry everything a partner's MISP or OpenCTI already knows
(IPs, subnets, ASNs). Three things have no STIX object, so they are custom
cyber-observable types, declared with the ``stix2`` library's support so
that both ends parse them (``x-`` prefixed, as STIX 2.1 requires):

- ``x-llm-prompt-template``: a prompt-template unit, ``unit_hash`` (16 hex
  digits) computed as ``signals.template_units`` does (docs/intel.md says how
  to compute it on your own traffic), ``hashing`` names the scheme;
- ``x-payment-instrument``: a payment fingerprint, only ever as a keyed hash
  (``keyed_hash``: HMAC-SHA256 under the sharing community's key, ``hashing``
  names the key by its id);
- ``x-tls-client-fingerprint``: a TLS/HTTP client fingerprint (``value``, such as
  a JA4 string, and ``method``).

Campaign properties (accounts as keyed hashes, exchange counts, capabilities)
are custom properties prefixed ``x_distillguard_`` (``CAMPAIGN_PROPERTIES``).
STIX 2.1 prefers a ``toplevel-property-extension`` with an
``extension-definition`` object, but the definition's ``version`` property
breaks OASIS medallion (3.0.0 reads any ``version`` as a timestamp and fails
every read of the collection), so plain custom properties it is: the
validator warns (a SHOULD), every reader keeps them.
"""

from __future__ import annotations

import uuid
from typing import Any

import stix2
from stix2 import properties

__all__ = [
    "ATLAS_REFERENCES",
    "CAMPAIGN_PROPERTIES",
    "DG_NAMESPACE",
    "TEMPLATE_HASHING",
    "TLP_MARKINGS",
    "ClientFingerprint",
    "PaymentInstrument",
    "PromptTemplate",
]

# UUIDv5 namespace of distillguard's deterministic STIX ids (the same finding
# exported twice gives the same ids, so a TAXII server keeps one copy).
DG_NAMESPACE = uuid.UUID("6f0b3cbb-8e55-5a86-9c0e-7d3e5b3a2f10")
TEMPLATE_HASHING = "distillguard-unit-xxh3-64/1"
CAMPAIGN_PROPERTIES = ("x_distillguard_account_hashes", "x_distillguard_accounts",
                        "x_distillguard_exchanges", "x_distillguard_capabilities",
                        "x_distillguard_techniques", "x_distillguard_hashing",
                        "x_distillguard_rule_ids")

TLP_MARKINGS: dict[str, Any] = {"white": stix2.TLP_WHITE, "clear": stix2.TLP_WHITE,
                                "green": stix2.TLP_GREEN, "amber": stix2.TLP_AMBER,
                                "red": stix2.TLP_RED}

_ATLAS = "mitre-atlas"
# The MITRE ATLAS techniques the lexicon's ``attack_pattern.atlas`` ids may name.
ATLAS_REFERENCES: dict[str, dict[str, str]] = {
    "AML.T0024.002": {"source_name": _ATLAS, "external_id": "AML.T0024.002",
                      "url": "https://atlas.mitre.org/techniques/AML.T0024.002",
                      "description": "Extract AI Model"},
    "AML.T0024": {"source_name": _ATLAS, "external_id": "AML.T0024",
                  "url": "https://atlas.mitre.org/techniques/AML.T0024",
                  "description": "Exfiltration via AI Inference API"},
}


@stix2.CustomObservable("x-llm-prompt-template", [
    ("unit_hash", properties.StringProperty(required=True)),
    ("hashing", properties.StringProperty()),
], id_contrib_props=["unit_hash", "hashing"])
class PromptTemplate:
    """A prompt-template unit (see ``signals.template_units``)."""


@stix2.CustomObservable("x-payment-instrument", [
    ("keyed_hash", properties.StringProperty(required=True)),
    ("hashing", properties.StringProperty()),
], id_contrib_props=["keyed_hash", "hashing"])
class PaymentInstrument:
    """A payment fingerprint as a keyed hash, never raw."""


@stix2.CustomObservable("x-tls-client-fingerprint", [
    ("value", properties.StringProperty(required=True)),
    ("method", properties.StringProperty()),
], id_contrib_props=["value", "method"])
class ClientFingerprint:
    """A TLS/HTTP client fingerprint (e.g. JA4)."""
