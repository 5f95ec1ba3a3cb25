"""The OASIS STIX 2.1 validator (``stix2-validator``) over a bundle we produce or receive.

The validator is imported when first used: its JSON-schema format checkers
build a grammar at import time (seconds), which no other command should pay.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from distillguard.errors import BundleError

__all__ = ["ValidationReport", "validate_bundle_text"]


@dataclass
class ValidationReport:
    """The validator's errors (the bundle breaks STIX 2.1) and warnings (SHOULDs)."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.errors


def validate_bundle_text(text: str) -> ValidationReport:
    """Run the OASIS validator (STIX 2.1, default checks) over a serialized bundle."""
    from stix2validator import ValidationError, ValidationOptions, validate_string

    try:
        result = validate_string(text, ValidationOptions(version="2.1"))
    except ValidationError as exc:
        msg = f"the STIX validator could not read the bundle: {exc}"
        raise BundleError(msg) from exc
    return ValidationReport(errors=[str(e) for e in result.errors],
                            warnings=[str(w) for w in result.warnings])
