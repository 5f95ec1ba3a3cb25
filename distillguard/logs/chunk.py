"""What every log reader yields: a batch of valid exchanges plus the rejects."""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

from distillguard.logs.quarantine import QuarantineRow, unreadable_row
from distillguard.logs.schema import empty_batch

__all__ = ["ReadChunk", "unreadable_chunk"]


@dataclass(slots=True)
class ReadChunk:
    """A slice of one input file.

    ``batch`` has ``EXCHANGE_SCHEMA``. ``last_line`` is the number of the last
    line (JSON Lines) or row (Parquet) this chunk covers, so a reader can resume
    right after it. ``position`` is how far into the file, in bytes on disk,
    reading has gone (for progress bars). ``blank_lines`` counts the lines
    holding nothing but white space, which carry no record; ``not_exchanges`` the
    records of another source that are not model exchanges (spans of other
    operations, a batch's response lines paired with their requests), passed over.
    """

    source_file: str
    batch: pa.RecordBatch
    quarantined: list[QuarantineRow] = field(default_factory=list)
    last_line: int = 0
    position: int = 0
    blank_lines: int = 0
    not_exchanges: int = 0


def unreadable_chunk(source_file: str, reason: str) -> ReadChunk:
    """The one chunk of a file that cannot be read: no exchanges, one ``unreadable`` row."""
    return ReadChunk(source_file, empty_batch(), [unreadable_row(source_file, reason)])
