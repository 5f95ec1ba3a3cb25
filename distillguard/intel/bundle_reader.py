"""Read a STIX 2.1 bundle received from a partner, defensively.

A bundle is input from outside: it may be malformed, hostile or huge. It is
checked whole before anything uses it, so a bad one changes nothing:

1. size first (``max_bundle_bytes``), before a byte is parsed;
2. JSON (orjson), then nesting depth (``MAX_DEPTH``: STIX objects are
   shallow; deep nesting only serves to exhaust a parser's stack);
3. the envelope: ``type: bundle`` and at most ``max_objects`` objects;
4. every object through the ``stix2`` parser (types, required properties,
   indicator patterns); a type neither STIX nor one of distillguard's
   custom observables is an error naming the object.

What comes out is plain values (``verdict.PartnerIndicator``): the kinds the
scan matches, each with the partner and campaign it came from. Indicators
whose pattern cannot be matched on API traffic (file hashes, ``AND`` across
objects, ...), revoked ones and expired ones are counted, not used.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import stix2

from distillguard.errors import BundleError
from distillguard.intel import vocabulary  # noqa: F401 - registers the custom observables
from distillguard.intel.config import DEFAULT_MAX_BUNDLE_BYTES, DEFAULT_MAX_OBJECTS
from distillguard.intel.patterns import pattern_values
from distillguard.verdict.partner_intel import PartnerCampaign, PartnerIndicator

__all__ = ["MAX_DEPTH", "ReceivedIntel", "parse_bundle", "read_bundle", "read_bundles"]

MAX_DEPTH = 32
UNKNOWN_PARTNER = "(unnamed partner)"


@dataclass
class ReceivedIntel:
    """Indicators received (possibly from several bundles), and what was left out."""

    indicators: list[PartnerIndicator] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    objects: Counter[str] = field(default_factory=Counter)
    unmatchable: int = 0
    revoked: int = 0
    expired: int = 0

    @property
    def campaigns(self) -> list[PartnerCampaign]:
        return sorted({i.campaign for i in self.indicators}, key=lambda c: (c.partner, c.name))

    def by_kind(self) -> Counter[str]:
        return Counter(i.kind for i in self.indicators)

    def extend(self, other: ReceivedIntel) -> None:
        self.indicators += other.indicators
        self.sources += other.sources
        self.objects.update(other.objects)
        self.unmatchable += other.unmatchable
        self.revoked += other.revoked
        self.expired += other.expired


def _check_depth(value: Any, source: str) -> None:
    """Iterative, so a hostile document cannot exhaust the stack here either."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            msg = f"{source}: JSON nested deeper than {MAX_DEPTH} levels; no STIX object is"
            raise BundleError(msg)
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)


def _envelope(data: Any, source: str, max_objects: int) -> list[dict[str, Any]]:
    if not isinstance(data, dict) or data.get("type") != "bundle":
        msg = f"{source}: not a STIX bundle (the top level must be an object with type 'bundle')"
        raise BundleError(msg)
    objects = data.get("objects", [])
    if not isinstance(objects, list):
        msg = f"{source}: the bundle's 'objects' must be a list"
        raise BundleError(msg)
    if len(objects) > max_objects:
        msg = f"{source}: {len(objects):,} objects, more than the limit of {max_objects:,}"
        raise BundleError(msg)
    for i, obj in enumerate(objects):
        if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
            msg = f"{source}: object {i} is not a STIX object (no 'type')"
            raise BundleError(msg)
    return objects


def _parse_objects(objects: list[dict[str, Any]], source: str) -> list[Any]:
    parsed = []
    for i, raw in enumerate(objects):
        where = f"{source}: object {i} ({raw.get('id', raw['type'])})"
        try:
            obj = stix2.parse(raw, allow_custom=True, version="2.1")
        except (stix2.exceptions.STIXError, ValueError, TypeError, KeyError,
                RecursionError) as exc:
            msg = f"{where} is not valid STIX 2.1: {exc}"
            raise BundleError(msg) from exc
        if isinstance(obj, dict):
            msg = (f"{where} has unknown type {raw['type']!r}: neither STIX 2.1 nor one of "
                   "distillguard's custom observables")
            raise BundleError(msg)
        parsed.append(obj)
    return parsed


def _latest(objects: list[Any]) -> dict[str, Any]:
    """The newest version of each id (a bundle may carry several)."""
    out: dict[str, Any] = {}
    for obj in objects:
        current = out.get(obj.id)
        if current is None or str(obj.get("modified", "")) >= str(current.get("modified", "")):
            out[obj.id] = obj
    return out


def _indicators(objects: dict[str, Any], source: str, now: datetime,
                received: ReceivedIntel) -> None:
    names = {i: o.name for i, o in objects.items() if o.type == "identity"}
    targets: dict[str, list[str]] = {}
    for o in objects.values():
        if o.type == "relationship" and o.relationship_type == "indicates":
            targets.setdefault(o.source_ref, []).append(o.target_ref)
    for o in objects.values():
        if o.type != "indicator":
            continue
        if o.get("revoked"):
            received.revoked += 1
            continue
        until = o.get("valid_until")
        if until is not None and until < now:
            received.expired += 1
            continue
        values = pattern_values(o.pattern) if o.pattern_type == "stix" else None
        if not values:
            received.unmatchable += 1
            continue
        partner = names.get(o.get("created_by_ref", ""), UNKNOWN_PARTNER)
        campaigns = [PartnerCampaign(t, objects[t].name, names.get(
                         objects[t].get("created_by_ref", ""), partner))
                     for t in targets.get(o.id, [])
                     if t in objects and objects[t].type in ("campaign", "intrusion-set")]
        if not campaigns:
            campaigns = [PartnerCampaign(o.id, o.get("name") or o.id, partner)]
        for campaign in campaigns:
            received.indicators += [
                PartnerIndicator(kind, value, campaign, o.get("confidence"), o.id)
                for kind, value in values]
    received.sources.append(source)


def parse_bundle(data: bytes, *, source: str = "bundle",
                 max_objects: int = DEFAULT_MAX_OBJECTS,
                 now: datetime | None = None) -> ReceivedIntel:
    """Check and read one bundle's bytes; raise ``BundleError`` naming what is wrong."""
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        msg = f"{source}: not valid JSON ({exc})"
        raise BundleError(msg) from exc
    _check_depth(document, source)
    objects = _parse_objects(_envelope(document, source, max_objects), source)
    received = ReceivedIntel(objects=Counter(o.type for o in objects))
    _indicators(_latest(objects), source, now or datetime.now(UTC), received)
    return received


def read_bundle(path: Path, *, max_bytes: int = DEFAULT_MAX_BUNDLE_BYTES,
                max_objects: int = DEFAULT_MAX_OBJECTS) -> ReceivedIntel:
    """``parse_bundle`` on a file, refusing files over ``max_bytes`` before reading them."""
    try:
        size = path.stat().st_size
        if size > max_bytes:
            msg = (f"{path}: {size:,} bytes, more than the limit of {max_bytes:,} "
                   "(max_bundle_bytes in the intel config)")
            raise BundleError(msg)
        data = path.read_bytes()
    except OSError as exc:
        msg = f"cannot read bundle {path}: {exc}"
        raise BundleError(msg) from exc
    return parse_bundle(data, source=str(path), max_objects=max_objects)


def read_bundles(paths: list[Path], **limits: int) -> ReceivedIntel:
    """Every bundle of ``paths`` (files, or folders of ``*.json``), all checked before any
    is used."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(path.glob("*.json"))
        else:
            files.append(path)
    received = ReceivedIntel()
    for file in files:
        received.extend(read_bundle(file, **limits))
    return received
