"""Parquet part files of the exchange store, written atomically."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from distillguard.logs import EXCHANGE_SCHEMA
from distillguard.logs.schema import TS_TYPE

__all__ = ["STORE_SCHEMA", "PartWriter", "write_schema_part"]

# Timestamps are stored as naive UTC so DuckDB reads them as TIMESTAMP, not
# TIMESTAMPTZ (whose values would depend on the session's time zone).
STORE_SCHEMA = pa.schema([
    f.with_type(pa.timestamp("ms")) if f.type == TS_TYPE else f for f in EXCHANGE_SCHEMA
])
# zstd level 1: about as fast to write as snappy and 40% smaller on prompt text.
COMPRESSION = "zstd"
COMPRESSION_LEVEL = 1
ROW_GROUP_ROWS = 16_384
SCHEMA_PART = "_schema.parquet"


def write_schema_part(parts_dir: Path) -> Path:
    """A zero-row part that gives the store's view its columns when no data is in yet."""
    path = parts_dir / SCHEMA_PART
    if not path.exists():
        tmp = path.with_name(path.name + ".tmp")
        pq.write_table(STORE_SCHEMA.empty_table(), tmp)
        tmp.replace(path)
    return path


class PartWriter:
    """Stream batches into one new part; it appears under its final name only on ``finish``."""

    def __init__(self, parts_dir: Path) -> None:
        self.name = f"part-{uuid.uuid4().hex}.parquet"
        self.path = parts_dir / self.name
        self._tmp = parts_dir / (self.name + ".tmp")
        self._writer: pq.ParquetWriter | None = None
        self.rows = 0

    def write(self, batch: pa.RecordBatch) -> None:
        if not batch.num_rows:
            return
        if self._writer is None:
            self._writer = pq.ParquetWriter(self._tmp, STORE_SCHEMA, compression=COMPRESSION,
                                            compression_level=COMPRESSION_LEVEL)
        self._writer.write_batch(batch.cast(STORE_SCHEMA), row_group_size=ROW_GROUP_ROWS)
        self.rows += batch.num_rows

    def finish(self) -> bool:
        """Close, fsync and rename the part into place; False if it holds no rows."""
        if self._writer is None:
            return False
        self._writer.close()
        fd = os.open(self._tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        self._tmp.replace(self.path)
        return True

    def discard(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._tmp.unlink(missing_ok=True)
        self.path.unlink(missing_ok=True)
