"""Other sources of exchanges: OpenTelemetry GenAI spans (OTLP JSON), LiteLLM proxy logs and
OpenAI batch request/response files, read into exchange-log records (docs/adapters.md)."""

from distillguard.logs.adapters.formats import (
    ADAPTER_FORMATS,
    INPUT_FORMATS,
    SourceOptions,
    format_of_record,
    sniff_format,
    unknown_format_reason,
)
from distillguard.logs.adapters.mapping import MAPPABLE_FIELDS, FieldMap, parse_field_map
from distillguard.logs.adapters.read import UNKNOWN_FORMAT, file_format

__all__ = [
    "ADAPTER_FORMATS",
    "INPUT_FORMATS",
    "MAPPABLE_FIELDS",
    "UNKNOWN_FORMAT",
    "FieldMap",
    "SourceOptions",
    "file_format",
    "format_of_record",
    "parse_field_map",
    "sniff_format",
    "unknown_format_reason",
]
