"""The scan's SQL, written once in DuckDB's dialect, translated for Spark SQL.

``sqlglot`` does the translation (``unnest`` -> ``explode``, ``list_distinct``
-> ``array_distinct``, struct literals, ``$name`` -> ``:name`` parameters...);
the parity test (tests/engines/test_spark_parity.py) runs every query on both
engines and compares the findings.
"""

from __future__ import annotations

from functools import lru_cache

import sqlglot
from sqlglot import exp

__all__ = ["to_spark_sql"]


def _hash_64(node: exp.Expression) -> exp.Expression:
    """DuckDB's ``hash`` is 64 bits; Spark's ``hash`` is 32 (Murmur3), so many owners
    would share one. Spark's 64-bit hash is ``xxhash64``."""
    if isinstance(node, exp.Anonymous) and str(node.this).lower() == "hash":
        return exp.Anonymous(this="xxhash64", expressions=node.expressions)
    return node


@lru_cache(maxsize=256)
def to_spark_sql(duckdb_sql: str) -> str:
    """``duckdb_sql`` in Spark SQL."""
    tree = sqlglot.parse_one(duckdb_sql, read="duckdb").transform(_hash_64)
    return tree.sql(dialect="spark")
