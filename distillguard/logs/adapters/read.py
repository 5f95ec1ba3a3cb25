"""Read one file of any input format: told from its content, or named by ``--format``."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from distillguard.logs.adapters.formats import (
    AUTO,
    LITELLM,
    NATIVE,
    OPENAI_BATCH,
    OTLP,
    SourceOptions,
    sniff_format,
    sniff_stream,
    unknown_format_reason,
)
from distillguard.logs.adapters.lines import Converter, open_failed, read_converted
from distillguard.logs.adapters.litellm import LiteLLMConverter
from distillguard.logs.adapters.mapping import (
    LITELLM_FIELDS,
    OPENAI_BATCH_FIELDS,
    OTLP_FIELDS,
    FieldMap,
)
from distillguard.logs.adapters.openai_batch import (
    BatchPartners,
    OpenAIBatchConverter,
    batch_partners,
    take_lines,
)
from distillguard.logs.adapters.otlp import OtlpConverter
from distillguard.logs.chunk import ReadChunk
from distillguard.logs.jsonl import decompressed, open_jsonl
from distillguard.logs.quarantine import FILE_LINE, quarantine_row
from distillguard.logs.schema import empty_batch

__all__ = ["UNKNOWN_FORMAT", "converter_for", "file_format", "read_adapted",
           "read_adapted_bytes"]

UNKNOWN_FORMAT = "unknown_format"
_TABLES = {OTLP: OTLP_FIELDS, LITELLM: LITELLM_FIELDS, OPENAI_BATCH: OPENAI_BATCH_FIELDS}


def file_format(path: Path, options: SourceOptions) -> str | None:
    """The format ``path`` is read in: the one named, else the one its first records show
    (native for Parquet, and for a file without one JSON object: nothing to tell), else None."""
    if options.format != AUTO:
        return options.format
    found, any_object = sniff_format(path)
    return found or (None if any_object else NATIVE)


def converter_for(fmt: str, options: SourceOptions,
                  partners: BatchPartners | None = None) -> Converter:
    """The converter of adapter format ``fmt``, with the run's field map."""
    field_map = FieldMap(_TABLES[fmt]).with_overrides(options.field_map)
    if fmt == OTLP:
        return OtlpConverter(field_map)
    if fmt == LITELLM:
        return LiteLLMConverter(field_map)
    return OpenAIBatchConverter(field_map, partners)


def unknown_format_chunk(source: str) -> ReadChunk:
    """The record of a file whose format cannot be told (the whole file, line 0): like an
    unreadable file it leaves no progress, so a later run with ``--format`` reads it."""
    row = quarantine_row(source, FILE_LINE, UNKNOWN_FORMAT, unknown_format_reason(), b"")
    return ReadChunk(source, empty_batch(), [row])


def read_adapted(path: Path, fmt: str, options: SourceOptions, *,
                 start_line: int = 0) -> Iterator[ReadChunk]:
    """Read ``path`` in adapter format ``fmt`` (``OTLP``, ``LITELLM``, ``OPENAI_BATCH``)."""
    source = str(path)
    partners = batch_partners(path) if fmt == OPENAI_BATCH else None
    converter = converter_for(fmt, options, partners)
    try:
        lines, raw = open_jsonl(path)
    except OSError as exc:
        yield open_failed(source, exc)
        return
    with raw, lines:
        yield from read_converted(lines, raw, source, converter, start_line=start_line)


def read_adapted_bytes(content: bytes, source: str, options: SourceOptions
                       ) -> Iterator[ReadChunk] | None:
    """Read a whole file in memory in its adapter format; None when it is native (or, with
    ``auto``, shows no format but holds no JSON object either). A batch file read this way
    is paired only within itself (its folder is not at hand)."""
    fmt = options.format
    if fmt == AUTO and not source.lower().endswith(".parquet"):
        try:
            found, any_object = sniff_stream(_stream(content, source))
        except Exception:  # a corrupt stream: the native reader reports where it broke
            found, any_object = None, False
        if found is None and any_object:
            return iter([unknown_format_chunk(source)])
        fmt = found or NATIVE
    if fmt in (AUTO, NATIVE):
        return None
    partners = take_lines(BatchPartners(), _stream(content, source)) \
        if fmt == OPENAI_BATCH else None
    raw = io.BytesIO(content)
    return read_converted(decompressed(raw, source), raw, source,
                          converter_for(fmt, options, partners))


def _stream(content: bytes, source: str) -> BinaryIO:
    return decompressed(io.BytesIO(content), source)
