"""Write simulated traffic: exchange parts, ``releases.json``, ``labels.jsonl``, a manifest.

Layout of ``DIR``::

    exchanges/part-00000.parquet ...     (--format parquet, the default)
    exchanges/part-00000.jsonl.zst ...   (--format jsonl)
    exchanges/ + exchanges-jsonl/        (--format both: one copy each, never mixed,
                                          so reading exchanges/ counts every exchange once)
    releases.json   [{"model", "released_at"}]
    labels.jsonl    one line per account seen: {"account_id", "actor", "archetype"}
    simulation.json scenario, options and counts (no per-account truth)

Parquet parts are zstd-compressed with large dictionaries: the same prompts
recur across exchanges, so each row group stores each text once.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import zstandard

from distillguard.sim.assemble import WRITE_SCHEMA

__all__ = ["FORMATS", "PartWriter", "exchange_dirs", "write_json", "write_labels",
           "write_releases"]

FORMATS = ("parquet", "jsonl", "both")
DICTIONARY_PAGE_LIMIT = 256 * 1024 * 1024
_NO_DICTIONARY = {"request_id", "conversation_id", "ts", "account_created", "input_tokens",
                  "output_tokens"}
# The messages' null counts (their texts are too long for min/max, which the writer
# drops) let an ingest that links the file in place check its contents from the
# footer instead of reading every text (``logs.parquet.storable_as_is``), as it
# does for files from writers that keep statistics for every column (their default).
_STATISTICS = ["ts", "account_id", "model", "account_tier", "asn", "country", "status",
               "input_tokens", "output_tokens", "account_created",
               "messages.list.element.role", "messages.list.element.content"]


def exchange_dirs(out: Path, fmt: str) -> dict[str, Path]:
    """Folder per written format."""
    if fmt == "both":
        return {"parquet": out / "exchanges", "jsonl": out / "exchanges-jsonl"}
    return {fmt: out / "exchanges"}


class PartWriter:
    """One part file per format; batches go to Parquet row groups and/or JSON lines."""

    def __init__(self, out: Path, part: int, fmt: str) -> None:
        self._parquet: pq.ParquetWriter | None = None
        self._jsonl: Any = None
        self._raw: Any = None
        for kind, folder in exchange_dirs(out, fmt).items():
            folder.mkdir(parents=True, exist_ok=True)
            if kind == "parquet":
                self._parquet = pq.ParquetWriter(
                    folder / f"part-{part:05d}.parquet", WRITE_SCHEMA, compression="zstd",
                    use_dictionary=[f.name for f in WRITE_SCHEMA if f.name not in _NO_DICTIONARY],
                    dictionary_pagesize_limit=DICTIONARY_PAGE_LIMIT,
                    write_statistics=_STATISTICS)
            else:
                self._raw = open(folder / f"part-{part:05d}.jsonl.zst", "wb")  # noqa: SIM115
                self._jsonl = zstandard.ZstdCompressor(level=3).stream_writer(self._raw)

    def write(self, batch: pa.RecordBatch) -> None:
        if self._parquet is not None:
            self._parquet.write_batch(batch, row_group_size=batch.num_rows or None)
        if self._jsonl is not None:
            self._jsonl.write(jsonl_bytes(batch))

    def close(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
        if self._jsonl is not None:
            self._jsonl.close()
            self._raw.close()

    def __enter__(self) -> PartWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def jsonl_bytes(batch: pa.RecordBatch) -> bytes:
    """JSON lines of ``batch``; null fields left out, times as RFC 3339 UTC."""
    lines = []
    option = orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC
    for row in batch.to_pylist():
        lines.append(orjson.dumps({k: v for k, v in row.items() if v is not None},
                                  option=option))
    return b"\n".join(lines) + b"\n" if lines else b""


def write_json(path: Path, value: Any) -> None:
    path.write_bytes(orjson.dumps(value, option=orjson.OPT_INDENT_2) + b"\n")


def _rfc3339(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_releases(path: Path, releases: dict[str, int]) -> None:
    rows = [{"model": m, "released_at": _rfc3339(ms)}
            for m, ms in sorted(releases.items(), key=lambda kv: kv[1])]
    write_json(path, rows)


def write_labels(path: Path, account_ids: pa.StringArray, actors: list[str | None],
                 archetypes: list[str], seen: np.ndarray) -> int:
    """One line per account that sent at least one exchange; returns the line count.

    Besides the spec's ``account_id`` and ``actor``, each line names the account's
    ``archetype`` (chat, app, eval, edu, corp, or the campaign), so an evaluation can
    break false positives down by the kind of customer they hit.
    """
    ids = account_ids.to_pylist()
    with open(path, "wb") as f:
        for i in sorted(np.flatnonzero(seen), key=lambda i: ids[i]):
            row = {"account_id": ids[i], "actor": actors[i], "archetype": archetypes[i]}
            f.write(orjson.dumps(row) + b"\n")
    return int(seen.sum())
