"""Parquet inputs kept as they are: linked into the store's parts, read through a projection.

A Parquet file whose every row the readers would keep unchanged but for types
(``logs.parquet.storable_as_is``) is not re-encoded: it is hard-linked into the
parts folder (copied once when a link cannot be made, e.g. across file
systems), and the ``exchanges`` view reads it in place, casting its columns to
the store's types on the fly, exactly as the reader would have cast them.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

__all__ = ["LINKED_PREFIX", "link_into", "linked_select", "sql_string"]

LINKED_PREFIX = "linked-"


def link_into(parts_dir: Path, source: Path) -> str:
    """Put ``source`` into ``parts_dir`` under a new name (a hard link, else a copy); the name."""
    name = f"{LINKED_PREFIX}{uuid.uuid4().hex}.parquet"
    target = parts_dir / name
    try:
        os.link(source, target)
    except OSError:
        tmp = target.with_name(name + ".tmp")
        shutil.copyfile(source, tmp)
        tmp.replace(target)
    return name


def linked_select(files: list[tuple[str, str]], file_types: dict[str, str],
                  store_types: list[tuple[str, str]]) -> str:
    """SQL reading linked ``files`` ((path, source file) pairs whose columns all have the
    DuckDB types ``file_types``) as rows of the store's columns ``store_types``, in order.

    One scan over all of them: a UNION ALL of one scan per file would give each file its
    own pipeline, and the memory of a query would grow with the number of files.
    """
    columns = []
    for name, store_type in store_types:
        have = file_types.get(name)
        if name == "source_file":
            arms = " ".join(f"WHEN {sql_string(path)} THEN {sql_string(source)}"
                            for path, source in files)
            value = f"CASE filename {arms} END"
        elif name == "source_line":
            value = "file_row_number + 1"
        elif have is None:
            value = f"CAST(NULL AS {store_type})"
        elif store_type.startswith("TIMESTAMP"):
            # Milliseconds, cut as the reader's cast cuts them (epoch_ms would round).
            micros = f'epoch_us("{name}")' if have.startswith("TIMESTAMP") else \
                f'CAST("{name}" AS BIGINT) * 1000'
            value = f"make_timestamp(({micros} // 1000) * 1000)"
        else:
            value = f'CAST("{name}" AS {store_type})'
        columns.append(f'{value} AS "{name}"')
    listing = ", ".join(sql_string(path) for path, _ in files)
    return (f"SELECT {', '.join(columns)} FROM read_parquet([{listing}], "
            "filename = true, file_row_number = true)")


def sql_string(text: str) -> str:
    """``text`` as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"
