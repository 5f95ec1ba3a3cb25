"""Exchange logs into Spark: read and validated by the same code as the embedded engine.

Spark's ``binaryFile`` source lists and reads the files from any path Spark
reads (local, HDFS, S3 once configured); each file is then decoded on an
executor by ``logs.read_bytes``, the readers the DuckDB engine uses, so both
engines accept, normalize and quarantine exactly the same records. A file is
read whole into one task: files up to a few hundred MB (rotated logs) are
fine; Spark's ``binaryFile`` refuses files over 2 GB.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlparse

import orjson
import pyarrow as pa

from distillguard.logs import (
    EXCHANGE_SCHEMA,
    QuarantineRow,
    is_log_file,
    read_bytes,
    unreadable_reason,
    unreadable_row,
)
from distillguard.logs.adapters import SourceOptions
from distillguard.logs.reader import discover_log_files, split_uris

__all__ = ["INPUT_ROW_SCHEMA", "QUARANTINE_FIELDS", "decode_files", "local_log_files",
           "read_logs", "write_quarantine"]

QUARANTINE_FIELDS = ("code", "reason", "raw", "raw_encoding", "raw_bytes")
_QUARANTINE_TYPES = (pa.string(), pa.string(), pa.string(), pa.string(), pa.int64())
_OWN_FOLDER_SUFFIX = ".duckdb.parts"


def _spark_type(t: pa.DataType) -> pa.DataType:
    """Times as naive UTC microseconds: Spark's TIMESTAMP_NTZ, as the store keeps them."""
    return pa.timestamp("us") if pa.types.is_timestamp(t) else t


# Exchanges and quarantined records in one stream (Spark's mapInArrow has one
# output schema): a quarantined record has ``code`` set and only its provenance.
INPUT_ROW_SCHEMA = pa.schema(
    [pa.field(f.name, _spark_type(f.type)) for f in EXCHANGE_SCHEMA]
    + [pa.field(f"quarantine_{n}", t) for n, t in zip(QUARANTINE_FIELDS, _QUARANTINE_TYPES,
                                                        strict=True)])


def _local_path(uri: str) -> str:
    """``file:/x/y`` as ``/x/y`` (what the embedded engine writes in quarantine rows)."""
    parsed = urlparse(uri)
    return parsed.path if parsed.scheme == "file" else uri


def _wanted(source: str) -> bool:
    """Inside a listed directory, only log files, never distillguard's own outputs."""
    path = PurePosixPath(source)
    return is_log_file(Path(path.name)) and not any(p.endswith(_OWN_FOLDER_SUFFIX)
                                                    for p in path.parts)


def _exchanges(batch: pa.RecordBatch) -> pa.RecordBatch:
    columns = [c.cast(_spark_type(c.type)) for c in batch.columns]
    columns += [pa.nulls(batch.num_rows, t) for t in _QUARANTINE_TYPES]
    return pa.RecordBatch.from_arrays(columns, schema=INPUT_ROW_SCHEMA)


def _quarantined(rows: list[QuarantineRow]) -> pa.RecordBatch:
    data: dict[str, list[Any]] = {f.name: [None] * len(rows) for f in INPUT_ROW_SCHEMA}
    data["source_file"] = [r.source_file for r in rows]
    data["source_line"] = [r.source_line for r in rows]
    for name in QUARANTINE_FIELDS:
        data[f"quarantine_{name}"] = [getattr(r, name) for r in rows]
    return pa.RecordBatch.from_pydict(data, schema=INPUT_ROW_SCHEMA)


def decode_files(batches: Iterator[pa.RecordBatch], *, listed_directories: bool = False,
                 source: SourceOptions = SourceOptions()) -> Iterator[pa.RecordBatch]:
    """``mapInArrow`` body: ``binaryFile`` rows (path, content) to ``INPUT_ROW_SCHEMA`` rows."""
    for batch in batches:
        paths = batch.column("path").to_pylist()
        contents = batch.column("content")
        for i, uri in enumerate(paths):
            path = _local_path(uri)
            if listed_directories and not _wanted(path):
                continue
            for chunk in read_bytes(contents[i].as_py(), path, source):
                if chunk.batch.num_rows:
                    yield _exchanges(chunk.batch)
                if chunk.quarantined:
                    yield _quarantined(chunk.quarantined)


def local_log_files(paths: list[str], source: SourceOptions = SourceOptions()
                    ) -> tuple[list[str], list[QuarantineRow]]:
    """The readable log files under local ``paths`` (resolved), and a record for each
    one that cannot be read, as the embedded engine lists and records them."""
    readable: list[str] = []
    unreadable: list[QuarantineRow] = []
    for path in discover_log_files(paths, source):
        problem = unreadable_reason(path)
        if problem is None:
            readable.append(str(path.resolve()))
        else:
            unreadable.append(unreadable_row(str(path.resolve()), problem))
    return readable, unreadable


def read_logs(spark: Any, logs: list[str], source: SourceOptions = SourceOptions()) -> Any:
    """A DataFrame of ``INPUT_ROW_SCHEMA`` rows for every record under ``logs``.

    Local paths are listed here, as the embedded engine lists them; paths with
    a scheme (``hdfs://``, ``s3a://``) are listed by Spark, recursively, and
    filtered by name on the executors.
    """
    from pyspark.sql.pandas.types import from_arrow_schema

    paths, remote = split_uris(logs)
    local, unreadable = local_log_files([str(p) for p in paths], source)
    schema = from_arrow_schema(INPUT_ROW_SCHEMA)
    frames = []
    if unreadable:
        frames.append(spark.createDataFrame(pa.Table.from_batches([_quarantined(unreadable)])))
    if local:
        files = spark.read.format("binaryFile").load(local)
        frames.append(files.mapInArrow(lambda it: decode_files(it, source=source), schema))
    if remote:
        files = (spark.read.format("binaryFile").option("recursiveFileLookup", "true")
                 .load(remote))
        frames.append(files.mapInArrow(
            lambda it: decode_files(it, listed_directories=True, source=source), schema))
    if not frames:
        return spark.createDataFrame(INPUT_ROW_SCHEMA.empty_table())
    out = frames[0]
    for frame in frames[1:]:
        out = out.unionByName(frame)
    return out


def write_quarantine(rows: Iterator[Any], out: Path) -> int:
    """Write quarantined records (Spark rows of ``source_file``, ``source_line`` and the
    quarantine fields) as JSON Lines, in the embedded engine's export format."""
    tmp = out.with_name(out.name + ".tmp")
    n = 0
    with tmp.open("wb") as f:
        for row in rows:
            record = {"source_file": row["source_file"], "source_line": row["source_line"],
                      **{name: row[f"quarantine_{name}"] for name in QUARANTINE_FIELDS}}
            f.write(orjson.dumps(record) + b"\n")
            n += 1
    tmp.replace(out)
    return n
