"""Translate DuckDB's exceptions into distillguard's, at the boundary, once."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import duckdb

from distillguard.errors import EngineError, StoreLockedError

__all__ = ["map_duckdb_errors"]


@contextmanager
def map_duckdb_errors(what: str) -> Iterator[None]:
    """Raise ``EngineError`` (or ``StoreLockedError``) for any DuckDB failure inside."""
    try:
        yield
    except duckdb.Error as exc:
        text = str(exc)
        if "lock" in text.lower() and ("conflicting" in text.lower() or "set lock" in text):
            msg = f"{what}: the database is in use by another process ({text.splitlines()[0]})"
            raise StoreLockedError(msg) from exc
        msg = f"{what}: {text.splitlines()[0] if text else type(exc).__name__}"
        raise EngineError(msg) from exc
