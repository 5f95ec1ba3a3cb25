"""The input formats, how a file's format is told from its first records, and the options
a run reads its sources with."""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from distillguard.errors import InputError
from distillguard.logs.jsonl import decompressed

__all__ = [
    "ADAPTER_FORMATS",
    "AUTO",
    "FORMAT_SIGNS",
    "INPUT_FORMATS",
    "LITELLM",
    "NATIVE",
    "OPENAI_BATCH",
    "OTLP",
    "SourceOptions",
    "format_of_record",
    "sniff_format",
    "sniff_stream",
    "unknown_format_reason",
]

AUTO, NATIVE, OTLP, LITELLM, OPENAI_BATCH = "auto", "native", "otlp", "litellm", "openai-batch"
ADAPTER_FORMATS = (OTLP, LITELLM, OPENAI_BATCH)
INPUT_FORMATS = (AUTO, NATIVE, *ADAPTER_FORMATS)
# What each format's records carry, in the words of the error naming the formats tried.
FORMAT_SIGNS = {
    NATIVE: "request_id, account_id or messages (the exchange log)",
    OTLP: "resourceSpans or resourceLogs (OTLP JSON, as the Collector's file exporter writes)",
    LITELLM: "call_type and startTime (LiteLLM's standard logging payload)",
    OPENAI_BATCH: "custom_id (OpenAI batch input or output lines)",
}
# A record with any of these is the exchange log's, however broken (its reader says how).
_NATIVE_KEYS = frozenset({"request_id", "account_id", "messages"})
# How many non-blank lines, and bytes of them, are looked at to tell a file's format.
SNIFF_LINES = 20
SNIFF_BYTES = 64 << 20


@dataclass(frozen=True, slots=True)
class SourceOptions:
    """How a run reads its sources: the format (``auto``: told per file), and per source
    format the places to read fields from that replace the default table's
    (``mapping.parse_field_map``)."""

    format: str = AUTO
    field_map: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.format not in INPUT_FORMATS:
            msg = f"unknown input format {self.format!r}: use one of {', '.join(INPUT_FORMATS)}"
            raise InputError(msg)


def format_of_record(obj: Any) -> str | None:
    """The format a parsed record belongs to, or None when it shows none.

    >>> format_of_record({"resourceSpans": []}), format_of_record({"custom_id": "r1"})
    ('otlp', 'openai-batch')
    >>> format_of_record({"request_id": "r1", "account_id": "a", "messages": []})
    'native'
    >>> format_of_record({"request_id": "r1"}), format_of_record({"foo": 1})
    ('native', None)
    """
    if not isinstance(obj, dict):
        return None
    if "resourceSpans" in obj or "resourceLogs" in obj:
        return OTLP
    if "call_type" in obj and "startTime" in obj:
        return LITELLM
    if "custom_id" in obj:
        return OPENAI_BATCH
    if not _NATIVE_KEYS.isdisjoint(obj):
        return NATIVE
    return None


def sniff_stream(lines: BinaryIO) -> tuple[str | None, bool]:
    """The format of the first records of decompressed ``lines`` that show one, and whether
    any line was a JSON object at all (a file of blank or broken lines has no format to
    tell: it is read as native, whose reader quarantines each bad line)."""
    buffered = io.BufferedReader(lines) if isinstance(lines, io.RawIOBase) else lines
    seen_object = False
    looked, size = 0, 0
    while looked < SNIFF_LINES and size < SNIFF_BYTES:
        line = buffered.readline(SNIFF_BYTES - size)
        if not line:
            break
        size += len(line)
        if not line.strip():
            continue
        looked += 1
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        seen_object |= isinstance(obj, dict)
        found = format_of_record(obj)
        if found is not None:
            return found, True
    return None, seen_object


def sniff_format(path: Path) -> tuple[str | None, bool]:
    """``sniff_stream`` over the file at ``path`` (gzip and zstd decompressed); a file that
    cannot be read or decompressed shows no format (its reader reports why)."""
    if path.name.lower().endswith(".parquet"):
        return NATIVE, True
    try:
        with open(path, "rb") as raw:
            return sniff_stream(decompressed(raw, path.name))  # type: ignore[arg-type]
    except Exception:  # any decoder's error: the file's reader reports it
        return None, False


def unknown_format_reason() -> str:
    """The quarantine reason of a file whose format cannot be told, naming the formats tried."""
    tried = "; ".join(f"{name}: {signs}" for name, signs in FORMAT_SIGNS.items())
    return (f"cannot tell the format of this file from its first {SNIFF_LINES} records; "
            f"formats tried: {tried}. Name it with --format")
