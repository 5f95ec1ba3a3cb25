"""Read, validate and quarantine exchange logs (shared/spec/exchange-log.md)."""

from distillguard.logs.chunk import ReadChunk
from distillguard.logs.quarantine import QuarantineRow, quarantine_row
from distillguard.logs.reader import (
    discover_log_files,
    is_log_file,
    read_bytes,
    read_exchanges,
    read_file,
    split_uris,
)
from distillguard.logs.records import parse_timestamp_ms, validate_record
from distillguard.logs.schema import EXCHANGE_SCHEMA, empty_batch

__all__ = [
    "EXCHANGE_SCHEMA",
    "QuarantineRow",
    "ReadChunk",
    "discover_log_files",
    "empty_batch",
    "is_log_file",
    "parse_timestamp_ms",
    "quarantine_row",
    "read_bytes",
    "read_exchanges",
    "read_file",
    "split_uris",
    "validate_record",
]
