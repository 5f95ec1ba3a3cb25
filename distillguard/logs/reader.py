"""Find exchange-log files and read them, whatever their format."""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from distillguard.errors import InputError
from distillguard.logs.access import unreadable_reason
from distillguard.logs.adapters.formats import ADAPTER_FORMATS, NATIVE, SourceOptions
from distillguard.logs.adapters.read import (
    file_format,
    read_adapted,
    read_adapted_bytes,
    unknown_format_chunk,
)
from distillguard.logs.chunk import ReadChunk, unreadable_chunk
from distillguard.logs.jsonl import JsonlOptions, decompressed, read_jsonl, read_jsonl_stream
from distillguard.logs.parquet import read_parquet, read_parquet_source

__all__ = ["LOG_SUFFIXES", "LogFiles", "NotRead", "discover_log_files", "is_log_file",
           "read_bytes", "read_exchanges", "read_file", "read_readable_file", "survey_log_files"]

LOG_SUFFIXES = (".jsonl", ".jsonl.gz", ".jsonl.zst", ".ndjson", ".parquet")
# Taken from a folder only when they hold one of the other sources' formats (OTLP JSON
# files are often ``traces.json``; a folder of logs also holds ``releases.json``).
ADAPTER_SUFFIXES = (".json", ".json.gz", ".json.zst")
# Files and folders distillguard itself writes next to logs (quarantine, the
# simulator's ground truth); never read back as input from a directory.
_OWN_OUTPUTS = (".quarantine.jsonl",)
_OWN_NAMES = frozenset({"labels.jsonl"})
_OWN_FOLDERS = (".duckdb.parts",)


def is_log_file(path: Path) -> bool:
    return _why_not_read(path.name) is None


def split_uris(paths: Iterable[str | Path]) -> tuple[list[Path], list[str]]:
    """The local paths and the URIs (``hdfs://``, ``s3a://`` ...) of ``paths``, each in order.

    >>> split_uris(["logs", "s3a://bucket/logs", "more/x.jsonl"])
    ([PosixPath('logs'), PosixPath('more/x.jsonl')], ['s3a://bucket/logs'])
    """
    local: list[Path] = []
    remote: list[str] = []
    for path in paths:
        if "://" in str(path):
            remote.append(str(path))
        else:
            local.append(Path(path))
    return local, remote


def _why_not_read(name: str) -> str | None:
    """Why a directory entry called ``name`` is not read as a log, or None when it is."""
    name = name.lower()
    if name.startswith("."):
        return "hidden (the name starts with a dot)"
    if name.endswith(_OWN_OUTPUTS):
        return "distillguard's own quarantine output"
    if name in _OWN_NAMES:
        return "ground-truth labels of simulated traffic, not exchanges"
    if not name.endswith(LOG_SUFFIXES):
        return f"not an exchange-log suffix ({', '.join(LOG_SUFFIXES)})"
    return None


@dataclass(frozen=True, slots=True)
class NotRead:
    """An entry of a listed directory that is not read, and why."""

    path: str
    why: str


@dataclass(slots=True)
class LogFiles:
    """What ``survey_log_files`` found: the log files to read and the entries left aside."""

    files: list[Path] = field(default_factory=list)
    not_read: list[NotRead] = field(default_factory=list)


def survey_log_files(paths: Iterable[str | Path],
                     options: SourceOptions = SourceOptions()) -> LogFiles:
    """Expand files and directories into the sorted list of log files to read.

    A path named on the command line is read whatever its suffix says (its
    format is then guessed from the suffix, JSON Lines by default); inside a
    directory only entries with a log suffix are taken, and never distillguard's
    own outputs (quarantine files, store parts, ``labels.jsonl``) nor hidden
    files and folders: those are listed in ``not_read`` with the reason. A
    ``.json`` file inside a directory is taken when ``options`` names another
    source's format, or, with ``auto``, when its first records show one. An
    entry with a log name that cannot be read (a broken link, a named pipe) is
    taken: reading it yields an ``unreadable`` record. Raises ``InputError`` for
    a path that does not exist.
    """
    survey = LogFiles()
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(_walk(path, survey.not_read, options))
        elif os.path.lexists(path):
            found.append(path)
        else:
            msg = f"no such file or directory: {path}"
            raise InputError(msg)
    seen: set[Path] = set()
    for p in found:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            survey.files.append(p)
    return survey


def _walk(folder: Path, not_read: list[NotRead], options: SourceOptions) -> list[Path]:
    """Log files under ``folder``, sorted; what is passed over goes to ``not_read``."""
    found: list[Path] = []
    for entry in sorted(folder.iterdir()):
        name = entry.name
        if entry.is_dir():
            if name.startswith("."):
                not_read.append(NotRead(str(entry), "hidden folder (not searched)"))
            elif name.endswith(_OWN_FOLDERS):
                not_read.append(NotRead(str(entry), "the parts of a distillguard store"))
            elif entry.is_symlink():
                not_read.append(NotRead(str(entry), "link to a folder (not followed)"))
            else:
                found.extend(_walk(entry, not_read, options))
            continue
        why = _why_not_read(name)
        if why is not None and name.lower().endswith(ADAPTER_SUFFIXES) and not name.startswith(
                "."):
            why = _why_not_adapted(entry, options)
        if why is None:
            found.append(entry)
        else:
            not_read.append(NotRead(str(entry), why))
    return found


def _why_not_adapted(path: Path, options: SourceOptions) -> str | None:
    """Why a ``.json`` file of a folder is not read, or None when it is."""
    if options.format == NATIVE:
        return "a .json file, not read as the exchange-log format (--format native)"
    if options.format in ADAPTER_FORMATS or file_format(path, options) in ADAPTER_FORMATS:
        return None
    return ("a .json file whose first records are none of the other sources' formats "
            f"({', '.join(ADAPTER_FORMATS)})")


def discover_log_files(paths: Iterable[str | Path],
                       options: SourceOptions = SourceOptions()) -> list[Path]:
    """The log files to read under ``paths`` (``survey_log_files`` without what it passes over)."""
    return survey_log_files(paths, options).files


def read_file(path: Path, *, start_line: int = 0, jsonl: JsonlOptions = JsonlOptions(),
              source: SourceOptions = SourceOptions()) -> Iterator[ReadChunk]:
    """Read one log file in its format (``source.format``, or told from its content):
    Parquet by suffix, the exchange-log JSON Lines (read as ``jsonl`` says), or another
    source's records through its adapter (``logs.adapters``).

    A file that cannot be read at all yields one ``unreadable`` record; a file whose
    format cannot be told, one ``unknown_format`` record naming the formats tried.
    """
    problem = unreadable_reason(path)
    if problem is not None:
        return iter([unreadable_chunk(str(path), problem)])
    return read_readable_file(path, start_line=start_line, jsonl=jsonl, source=source)


def read_readable_file(path: Path, *, start_line: int = 0,
                       jsonl: JsonlOptions = JsonlOptions(),
                       source: SourceOptions = SourceOptions()) -> Iterator[ReadChunk]:
    """``read_file`` of a file ``unreadable_reason`` has already passed."""
    if path.name.lower().endswith(".parquet"):
        return read_parquet(path, start_line=start_line)
    fmt = file_format(path, source)
    if fmt is None:
        return iter([unknown_format_chunk(str(path))])
    if fmt != NATIVE:
        return read_adapted(path, fmt, source, start_line=start_line)
    return read_jsonl(path, start_line=start_line, options=jsonl)


def read_bytes(content: bytes, source: str,
               options: SourceOptions = SourceOptions()) -> Iterator[ReadChunk]:
    """Read one whole log file already in memory (a Spark ``binaryFile`` row, say);
    ``source`` is its path, which also gives its compression (and Parquet)."""
    adapted = read_adapted_bytes(content, source, options)
    if adapted is not None:
        return adapted
    if source.lower().endswith(".parquet"):
        return read_parquet_source(pa.BufferReader(content), source, len(content))
    raw = io.BytesIO(content)
    return read_jsonl_stream(decompressed(raw, source), raw, source)


def read_exchanges(paths: Iterable[str | Path],
                   options: SourceOptions = SourceOptions()) -> Iterator[ReadChunk]:
    """Stream every exchange of every log file under ``paths``, in bounded batches."""
    for path in discover_log_files(paths, options):
        yield from read_file(path, source=options)
