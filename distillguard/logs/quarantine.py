"""Quarantined records: what was rejected, where it was, and why."""

from __future__ import annotations

import base64
from dataclasses import dataclass

__all__ = ["FILE_LINE", "UNREADABLE", "QuarantineRow", "quarantine_row", "unreadable_row"]

# A quarantined raw line is kept whole ("nothing is lost"), up to this size;
# past it the row keeps the first bytes and says how long the line was.
MAX_RAW_BYTES = 16 * 1024 * 1024
# The line number of a record about a whole file (one that could not be read at all).
FILE_LINE = 0
UNREADABLE = "unreadable"


@dataclass(frozen=True, slots=True)
class QuarantineRow:
    """One rejected record. ``raw`` is UTF-8 text, or base64 when the bytes were not UTF-8."""

    source_file: str
    source_line: int
    code: str
    reason: str
    raw: str
    raw_encoding: str  # "utf-8" or "base64"
    raw_bytes: int


def quarantine_row(source_file: str, source_line: int, code: str, reason: str,
                   raw: bytes) -> QuarantineRow:
    """Build a quarantine row from the raw bytes of the rejected line."""
    size = len(raw)
    kept = raw[:MAX_RAW_BYTES].rstrip(b"\r\n")
    try:
        text, encoding = kept.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        text, encoding = base64.b64encode(kept).decode("ascii"), "base64"
    return QuarantineRow(source_file, source_line, code, reason, text, encoding, size)


def unreadable_row(source_file: str, reason: str) -> QuarantineRow:
    """The record of a file that could not be read at all (line ``FILE_LINE``)."""
    return quarantine_row(source_file, FILE_LINE, UNREADABLE, reason, b"")
