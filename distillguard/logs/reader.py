"""Find exchange-log files and read them, whatever their format."""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from pathlib import Path

import pyarrow as pa

from distillguard.errors import InputError
from distillguard.logs.chunk import ReadChunk
from distillguard.logs.jsonl import decompressed, read_jsonl, read_jsonl_stream
from distillguard.logs.parquet import read_parquet, read_parquet_source

__all__ = ["LOG_SUFFIXES", "discover_log_files", "is_log_file", "read_bytes", "read_exchanges",
           "read_file"]

LOG_SUFFIXES = (".jsonl", ".jsonl.gz", ".jsonl.zst", ".ndjson", ".parquet")
# Files and folders distillguard itself writes next to logs (quarantine, the
# simulator's ground truth); never read back as input from a directory.
_OWN_OUTPUTS = (".quarantine.jsonl",)
_OWN_NAMES = frozenset({"labels.jsonl"})
_OWN_FOLDERS = (".duckdb.parts",)


def is_log_file(path: Path) -> bool:
    name = path.name.lower()
    if name.startswith(".") or name.endswith(_OWN_OUTPUTS) or name in _OWN_NAMES:
        return False
    return name.endswith(LOG_SUFFIXES)


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


def discover_log_files(paths: Iterable[str | Path]) -> list[Path]:
    """Expand files and directories into the sorted list of log files to read.

    A path named on the command line is read whatever its suffix says (its
    format is then guessed from the suffix, JSON Lines by default); inside a
    directory only files with a log suffix are taken, and never distillguard's
    own outputs (quarantine files, store parts, ``labels.jsonl``). Raises ``InputError`` for
    a path that does not exist.
    """
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(sorted(
                p for p in path.rglob("*")
                if p.is_file() and is_log_file(p)
                and not any(part.endswith(_OWN_FOLDERS) for part in p.relative_to(path).parts)))
        elif path.is_file():
            found.append(path)
        else:
            msg = f"no such file or directory: {path}"
            raise InputError(msg)
    seen: set[Path] = set()
    unique = []
    for p in found:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique


def read_file(path: Path, *, start_line: int = 0) -> Iterator[ReadChunk]:
    """Read one log file; Parquet by suffix, JSON Lines otherwise."""
    if path.name.lower().endswith(".parquet"):
        return read_parquet(path, start_line=start_line)
    return read_jsonl(path, start_line=start_line)


def read_bytes(content: bytes, source: str) -> Iterator[ReadChunk]:
    """Read one whole log file already in memory (a Spark ``binaryFile`` row, say);
    ``source`` is its path, which also gives its format."""
    if source.lower().endswith(".parquet"):
        return read_parquet_source(pa.BufferReader(content), source, len(content))
    raw = io.BytesIO(content)
    return read_jsonl_stream(decompressed(raw, source), raw, source)


def read_exchanges(paths: Iterable[str | Path]) -> Iterator[ReadChunk]:
    """Stream every exchange of every log file under ``paths``, in bounded batches."""
    for path in discover_log_files(paths):
        yield from read_file(path)
