"""What the embedded engine may use: memory, threads and a folder to spill into.

DuckDB keeps its working data under ``memory`` and writes what does not fit to
``temp_dir`` (by default ``<store>.tmp`` beside the store), so a scan's memory
is set here, not by the size of its input. ``scan`` and ``ingest`` take them as
``--memory``, ``--threads`` and ``--temp-dir`` (docs/scale.md).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distillguard.errors import InputError

__all__ = ["DEFAULT_MEMORY", "EngineResources", "parse_memory"]

# DuckDB's share. The process needs about 0.5 GB more besides (Python, Arrow
# batches of the signals stage, per-account results): 1GB keeps a scan of any
# size under 2 GB resident (docs/scale.md).
DEFAULT_MEMORY = "1GB"

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(KB|MB|GB|TB|KIB|MIB|GIB|TIB)\s*$", re.IGNORECASE)
_UNIT_BYTES = {"KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
               "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}
# Below this DuckDB cannot hold even one scan's buffers for two threads.
MIN_MEMORY_BYTES = 64 * 2**20


def parse_memory(text: str) -> int:
    """Bytes in a size such as ``1GB``, ``512MB`` or ``1.5GiB``.

    >>> parse_memory("1GB"), parse_memory("512 MiB")
    (1000000000, 536870912)
    """
    match = _SIZE.match(text)
    if match is None:
        msg = f"memory size {text!r}: write a number and a unit, such as 1GB, 512MB or 2GiB"
        raise InputError(msg)
    size = int(float(match.group(1)) * _UNIT_BYTES[match.group(2).upper()])
    if size < MIN_MEMORY_BYTES:
        msg = f"memory size {text!r} is too small: give the engine at least 64MB"
        raise InputError(msg)
    return size


@dataclass(frozen=True)
class EngineResources:
    """Memory, threads and spill folder of one embedded-engine connection.

    ``threads`` None: one per core. ``temp_dir`` None: ``<store>.tmp`` beside the store.
    """

    memory: str = DEFAULT_MEMORY
    threads: int | None = None
    temp_dir: Path | None = None

    def __post_init__(self) -> None:
        parse_memory(self.memory)
        if self.threads is not None and self.threads < 1:
            msg = f"threads {self.threads}: use at least 1"
            raise InputError(msg)

    @property
    def thread_count(self) -> int:
        return self.threads or os.cpu_count() or 1

    def spill_dir(self, store: Path) -> Path:
        return self.temp_dir or store.with_name(store.name + ".tmp")

    def duckdb_config(self, store: Path) -> dict[str, Any]:
        """The connection settings for a store at ``store``."""
        return {"memory_limit": self.memory, "threads": self.thread_count,
                "temp_directory": str(self.spill_dir(store)),
                "preserve_insertion_order": False}
