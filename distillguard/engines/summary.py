"""What is in the store: the figures an analyst checks after an ingest."""

from __future__ import annotations

from typing import Any

import duckdb

from distillguard.behavior.coverage import (
    EXCHANGES_SUMMARY_COLUMNS,
    EXCHANGES_SUMMARY_SQL,
    field_coverage,
)
from distillguard.engines.duckdb_errors import map_duckdb_errors

__all__ = ["store_summary"]

TOP_REASONS = 10


def store_summary(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """Exchanges, accounts, time range, models and quarantine reasons of a store."""
    with map_duckdb_errors("cannot summarize the store"):
        read = dict(zip(EXCHANGES_SUMMARY_COLUMNS, con.execute(EXCHANGES_SUMMARY_SQL).fetchone(),
                        strict=True))
        models = con.execute(
            "SELECT model, count(*) AS n FROM exchanges GROUP BY model ORDER BY n DESC, model"
        ).fetchall()
        quarantined = con.execute("SELECT count(*) FROM quarantine").fetchone()[0]
        reasons = con.execute(
            "SELECT code, any_value(reason) AS example, count(*) AS n FROM quarantine "
            f"GROUP BY code ORDER BY n DESC, code LIMIT {TOP_REASONS}").fetchall()
    return {
        "exchanges": read["exchanges"],
        "accounts": read["accounts"],
        "from": _iso(read["first"]),
        "to": _iso(read["last"]),
        "models": {m: n for m, n in models},
        "quarantined": quarantined,
        "quarantine_reasons": [{"code": c, "count": n, "example": e} for c, e, n in reasons],
        **field_coverage(read),
    }


def _iso(value: Any) -> str | None:
    return None if value is None else value.isoformat(timespec="milliseconds") + "Z"
