"""The scan's SQL, written once in DuckDB's dialect, translated for Spark SQL.

``sqlglot`` does the translation (``unnest`` -> ``explode``, ``list_distinct``
-> ``array_distinct``, struct literals, ``$name`` -> ``:name`` parameters...);
the parity test (tests/engines/test_spark_parity.py) runs every query on both
engines and compares the findings.
"""

from __future__ import annotations

from functools import lru_cache

import sqlglot

__all__ = ["to_spark_sql"]


@lru_cache(maxsize=256)
def to_spark_sql(duckdb_sql: str) -> str:
    """``duckdb_sql`` in Spark SQL."""
    return sqlglot.transpile(duckdb_sql, read="duckdb", write="spark")[0]
