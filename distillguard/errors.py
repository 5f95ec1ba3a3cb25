"""All distillguard errors, in one tree.

Callers catch at the level they need::

    DistillguardError
    ├── InputError              input that cannot be read as exchanges
    │   ├── RecordError         one bad record (file, line, reason); becomes a quarantine row
    │   └── SchemaError         a whole file or column of the wrong shape
    ├── RuleError               a policy/rule file that cannot be used
    │   ├── RuleValidationError
    │   └── UnknownSignalError
    ├── EngineError             the storage/compute engine failed
    │   ├── StoreLockedError    another process holds the database
    │   └── ResourceError       the engine ran out of memory or of disk to spill to
    ├── ApiError                a gateway request answered with an error (status, code)
    ├── UpstreamError           the gateway's upstream model API failed
    │   ├── UpstreamTimeout
    │   ├── UpstreamMalformed   it answered with something that is not the API's format
    │   └── UpstreamStatusError
    ├── StateStoreError         shared gateway state (Redis) failed
    ├── WorkerGone              the gateway's scoring worker process died
    └── IntelError              threat-intel export or exchange failed
        ├── IntelConfigError    the intel configuration (secret, producer) is missing or unusable
        ├── BundleError         a STIX bundle that cannot be used (malformed, hostile, too big)
        └── TaxiiError          a TAXII server refused or failed a request
"""

from __future__ import annotations

__all__ = [
    "ApiError",
    "BundleError",
    "DistillguardError",
    "EngineError",
    "InputError",
    "IntelConfigError",
    "IntelError",
    "RecordError",
    "ResourceError",
    "RuleError",
    "RuleValidationError",
    "SchemaError",
    "StateStoreError",
    "StoreLockedError",
    "TaxiiError",
    "UnknownSignalError",
    "UpstreamError",
    "UpstreamMalformed",
    "UpstreamStatusError",
    "UpstreamTimeout",
    "WorkerGone",
]


class DistillguardError(Exception):
    """Root of every error distillguard raises on purpose."""


class InputError(DistillguardError):
    """Input that cannot be read as exchanges."""


class RecordError(InputError):
    """One record that breaks the exchange-log format.

    ``code`` is a short stable category (``invalid_json``, ``wrong_type`` ...),
    ``reason`` the sentence an analyst reads. ``logs`` turns it into a
    quarantine row and never lets it escape.
    """

    def __init__(self, code: str, reason: str, *, file: str = "", line: int = 0) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.file = file
        self.line = line


class SchemaError(InputError):
    """A whole file, or a column of it, has the wrong shape."""


class RuleError(DistillguardError):
    """A policy or rule file that cannot be used."""


class RuleValidationError(RuleError):
    """A rule file does not match the rule schema."""


class UnknownSignalError(RuleError):
    """A rule names a signal that is not registered."""


class EngineError(DistillguardError):
    """The storage or compute engine failed."""


class StoreLockedError(EngineError):
    """Another process holds the database file."""


class ResourceError(EngineError):
    """The engine ran out of memory or of disk to spill to; the message says what to change
    (``--memory``, ``--threads``, ``--temp-dir``)."""


class ApiError(DistillguardError):
    """A gateway request answered with an error: ``status``, a message telling the client
    what to do, a stable ``code``, for bad input the ``param`` at fault, and headers to
    send (``Retry-After``). ``gateway.api_errors`` renders it in each API's format."""

    def __init__(self, status: int, message: str, *, code: str, param: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.headers = headers or {}


class UpstreamError(DistillguardError):
    """The gateway's upstream model API failed."""


class UpstreamTimeout(UpstreamError):
    """The upstream did not answer in time."""


class UpstreamMalformed(UpstreamError):
    """The upstream answered 200 with a body that is not the API's format (not JSON, not
    server-sent events of JSON)."""


class UpstreamStatusError(UpstreamError):
    """The upstream answered with an error status."""


class StateStoreError(DistillguardError):
    """The shared gateway state store failed."""


class WorkerGone(DistillguardError):
    """The gateway's scoring worker process died or closed its pipes."""


class IntelError(DistillguardError):
    """Threat-intel export or exchange failed."""


class IntelConfigError(IntelError):
    """The intel configuration (the keyed-hash secret, the producer) is missing or unusable."""


class BundleError(IntelError):
    """A STIX bundle that cannot be used: malformed, hostile or too big."""


class TaxiiError(IntelError):
    """A TAXII server refused or failed a request."""
