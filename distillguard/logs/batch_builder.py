"""Turn validated rows into an Arrow record batch of ``EXCHANGE_SCHEMA``."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from distillguard.logs.schema import EXCHANGE_SCHEMA, SPEC_FIELDS

__all__ = ["BatchBuilder"]

_N_SPEC = len(SPEC_FIELDS)


class BatchBuilder:
    """Collect rows column by column, then build one batch.

    Columns are kept as Python lists and converted once per batch, which is
    far cheaper than building Arrow arrays row by row.
    """

    def __init__(self, source_file: str) -> None:
        self.source_file = source_file
        self._columns: list[list[Any]] = [[] for _ in range(_N_SPEC)]
        self._extra: list[str | None] = []
        self._lines: list[int] = []

    def __len__(self) -> int:
        return len(self._lines)

    def add(self, values: list[Any], extra: str | None, line: int) -> None:
        for column, value in zip(self._columns, values, strict=True):
            column.append(value)
        self._extra.append(extra)
        self._lines.append(line)

    def build(self) -> pa.RecordBatch:
        """Return the collected rows as a batch and start empty again."""
        n = len(self._lines)
        arrays = [
            pa.array(column, type=f.type) for column, f in zip(self._columns, SPEC_FIELDS,
                                                                 strict=True)
        ]
        arrays.append(pa.array(self._extra, type=pa.string()))
        arrays.append(pa.repeat(pa.scalar(self.source_file), n) if n else
                      pa.array([], pa.string()))
        arrays.append(pa.array(self._lines, type=pa.int64()))
        self._columns = [[] for _ in range(_N_SPEC)]
        self._extra = []
        self._lines = []
        return pa.RecordBatch.from_arrays(arrays, schema=EXCHANGE_SCHEMA)
