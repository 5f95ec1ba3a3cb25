"""Who we are when we share, and the secret our keyed hashes use: read once, at the edge.

The secret comes from the environment (``DISTILLGUARD_INTEL_KEY``) or from a
file named in the intel config file (``secret_file``); there is no default,
since a known key would make every shared hash of an account id or payment
fingerprint reversible by guessing. Partners who use the same key (a
sharing community's key, handed over out of band) can match each other's
payment hashes; anyone else sees opaque strings.

Example ``intel.yaml``::

    producer: {name: "Example Lab", contact: "security@example.org"}
    secret_file: /etc/distillguard/intel.key   # or set DISTILLGUARD_INTEL_KEY
    tlp: amber
    max_bundle_bytes: 52428800
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from distillguard.errors import IntelConfigError
from distillguard.intel.vocabulary import TLP_MARKINGS

__all__ = ["DEFAULT_MAX_BUNDLE_BYTES", "DEFAULT_MAX_OBJECTS", "SECRET_ENV", "IntelConfig",
           "KeyedHasher", "load_intel_config"]

SECRET_ENV = "DISTILLGUARD_INTEL_KEY"
MIN_SECRET_BYTES = 16
DEFAULT_MAX_BUNDLE_BYTES = 50 * 1024 * 1024
DEFAULT_MAX_OBJECTS = 200_000
DEFAULT_PRODUCER = "distillguard user"


class KeyedHasher:
    """HMAC-SHA256 of identifiers under the sharing secret, as hex.

    ``key_id`` (the first 8 hex digits of SHA-256 over the secret) tells a
    partner which key made a hash without revealing it.

    >>> h = KeyedHasher(b"0123456789abcdef-example")
    >>> h.hash("acct-1") == h.hash("acct-1") != h.hash("acct-2")
    True
    >>> len(h.hash("acct-1")), h.scheme.startswith("hmac-sha256:")
    (64, True)
    """

    def __init__(self, secret: bytes) -> None:
        self._secret = secret
        self.key_id = hashlib.sha256(secret).hexdigest()[:8]
        self.scheme = f"hmac-sha256:{self.key_id}"

    def hash(self, value: str) -> str:
        return hmac.new(self._secret, value.encode("utf-8"), hashlib.sha256).hexdigest()

    def hash_all(self, values: Iterable[str]) -> list[str]:
        return [self.hash(v) for v in values]


@dataclass(frozen=True)
class IntelConfig:
    """The producer's name and contact, the TLP of what it shares, and the reader's limits."""

    producer: str = DEFAULT_PRODUCER
    contact: str | None = None
    tlp: str = "amber"
    secret: bytes | None = None
    max_bundle_bytes: int = DEFAULT_MAX_BUNDLE_BYTES
    max_objects: int = DEFAULT_MAX_OBJECTS

    def hasher(self) -> KeyedHasher:
        """The keyed hasher; a clear error when no secret is configured."""
        if self.secret is None:
            msg = (f"no intel secret configured: set {SECRET_ENV} (at least "
                   f"{MIN_SECRET_BYTES} bytes, e.g. `openssl rand -hex 32`) or `secret_file` in "
                   "the intel config file; account ids and payment fingerprints leave only as "
                   "hashes keyed with it")
            raise IntelConfigError(msg)
        return KeyedHasher(self.secret)


def _read_secret(raw: dict[str, Any], environ: Mapping[str, str], origin: str) -> bytes | None:
    if environ.get(SECRET_ENV):
        secret, where = environ[SECRET_ENV].encode("utf-8"), SECRET_ENV
    elif raw.get("secret_file"):
        path = Path(str(raw["secret_file"])).expanduser()
        try:
            secret, where = path.read_bytes().strip(), str(path)
        except OSError as exc:
            msg = f"cannot read the intel secret file {path} named in {origin}: {exc}"
            raise IntelConfigError(msg) from exc
    else:
        return None
    if len(secret) < MIN_SECRET_BYTES:
        msg = (f"the intel secret from {where} is {len(secret)} bytes; it needs at least "
               f"{MIN_SECRET_BYTES} (a short key makes the shared hashes guessable)")
        raise IntelConfigError(msg)
    return secret


def _positive_int(raw: dict[str, Any], key: str, default: int, origin: str) -> int:
    value = raw.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        msg = f"intel config {origin}: '{key}' must be a positive integer, got {value!r}"
        raise IntelConfigError(msg)
    return value


def load_intel_config(path: Path | None = None, *,
                      environ: Mapping[str, str] | None = None) -> IntelConfig:
    """Read the intel config file (optional) and the environment."""
    environ = os.environ if environ is None else environ
    raw: dict[str, Any] = {}
    origin = "(no config file)"
    if path is not None:
        origin = str(path)
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            msg = f"cannot read the intel config {path}: {exc}"
            raise IntelConfigError(msg) from exc
        if loaded is not None and not isinstance(loaded, dict):
            msg = f"intel config {path} must be a mapping"
            raise IntelConfigError(msg)
        raw = loaded or {}
        unknown = sorted(set(raw) - {"producer", "secret_file", "tlp", "max_bundle_bytes",
                                     "max_objects"})
        if unknown:
            msg = f"intel config {path}: unknown key(s) {', '.join(unknown)}"
            raise IntelConfigError(msg)
    producer = raw.get("producer") or {}
    if not isinstance(producer, dict) or not isinstance(producer.get("name", ""), str):
        msg = f"intel config {origin}: 'producer' must be a mapping with a 'name'"
        raise IntelConfigError(msg)
    tlp = str(raw.get("tlp", "amber")).lower()
    if tlp not in TLP_MARKINGS:
        msg = f"intel config {origin}: 'tlp' must be one of {', '.join(TLP_MARKINGS)}, got {tlp!r}"
        raise IntelConfigError(msg)
    return IntelConfig(
        producer=producer.get("name") or DEFAULT_PRODUCER, contact=producer.get("contact"),
        tlp=tlp, secret=_read_secret(raw, environ, origin),
        max_bundle_bytes=_positive_int(raw, "max_bundle_bytes", DEFAULT_MAX_BUNDLE_BYTES, origin),
        max_objects=_positive_int(raw, "max_objects", DEFAULT_MAX_OBJECTS, origin))
