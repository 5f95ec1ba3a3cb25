"""Translate DuckDB's exceptions into distillguard's, at the boundary, once.

A failure for want of memory or disk says what to change (``--memory``,
``--threads``, ``--temp-dir``), never only the engine's own words.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import duckdb

from distillguard.errors import EngineError, ResourceError, StoreLockedError

__all__ = ["map_duckdb_errors", "resource_advice"]

_USED = re.compile(r"\(([\d.]+ \w+)/([\d.]+ \w+) used\)")
_DISK_FULL = ("no space left", "disk full", "max_temp_directory_size", "temporary directory",
              "temp_directory")


def resource_advice(exc: duckdb.Error) -> str | None:
    """What to change when ``exc`` is the engine running out of memory or of disk; else None.

    >>> resource_advice(duckdb.OutOfMemoryException(
    ...     "Out of Memory Error: could not allocate block of size 256.0 KiB "
    ...     "(732.3 MiB/732.4 MiB used)"))  # doctest: +ELLIPSIS
    'the engine needed more than its memory limit (732.4 MiB): raise it with --memory ...'
    """
    text = str(exc)
    lowered = text.lower()
    if any(word in lowered for word in _DISK_FULL) and isinstance(
            exc, duckdb.OutOfMemoryException | duckdb.IOException):
        return ("the engine could not spill to its temporary folder (full, or not writable): "
                "free space there or give a folder on a disk with room with --temp-dir")
    if isinstance(exc, duckdb.OutOfMemoryException):
        used = _USED.search(text)
        limit = f" ({used.group(2)})" if used else ""
        return (f"the engine needed more than its memory limit{limit}: raise it with --memory "
                "(e.g. --memory 2GB), or use fewer --threads (each thread holds its own "
                "buffers); what does not fit spills to --temp-dir")
    return None


@contextmanager
def map_duckdb_errors(what: str) -> Iterator[None]:
    """Raise ``EngineError`` (``StoreLockedError``, ``ResourceError``) for any DuckDB failure."""
    try:
        yield
    except duckdb.Error as exc:
        text = str(exc)
        first = text.splitlines()[0] if text else type(exc).__name__
        if "lock" in text.lower() and ("conflicting" in text.lower() or "set lock" in text):
            msg = f"{what}: the database is in use by another process ({first})"
            raise StoreLockedError(msg) from exc
        advice = resource_advice(exc)
        if advice is not None:
            msg = f"{what}: {advice} [{first}]"
            raise ResourceError(msg) from exc
        msg = f"{what}: {first}"
        raise EngineError(msg) from exc
