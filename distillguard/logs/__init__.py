"""Read, validate and quarantine exchange logs (shared/spec/exchange-log.md)."""

from distillguard.logs.access import unreadable_reason
from distillguard.logs.chunk import ReadChunk, unreadable_chunk
from distillguard.logs.jsonl import JsonlOptions
from distillguard.logs.quarantine import QuarantineRow, quarantine_row, unreadable_row
from distillguard.logs.reader import (
    LogFiles,
    NotRead,
    discover_log_files,
    is_log_file,
    read_bytes,
    read_exchanges,
    read_file,
    read_readable_file,
    split_uris,
    survey_log_files,
)
from distillguard.logs.records import parse_timestamp_ms, validate_record
from distillguard.logs.schema import EXCHANGE_SCHEMA, empty_batch

__all__ = [
    "EXCHANGE_SCHEMA",
    "JsonlOptions",
    "LogFiles",
    "NotRead",
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
    "read_readable_file",
    "split_uris",
    "survey_log_files",
    "unreadable_chunk",
    "unreadable_reason",
    "unreadable_row",
    "validate_record",
]
