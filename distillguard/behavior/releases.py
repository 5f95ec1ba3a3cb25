"""Model releases as the table ``releases`` that ``ACCOUNT_RELEASE_SQL`` reads."""

from __future__ import annotations

from datetime import datetime

import pyarrow as pa

__all__ = ["releases_table"]


def releases_table(releases: list[dict[str, str]]) -> pa.Table:
    """``model, released_at`` (naive UTC) from ``{"model", "released_at"}`` records.

    >>> releases_table([{"model": "m2", "released_at": "2026-02-01T00:00:00Z"}]).to_pylist()
    [{'model': 'm2', 'released_at': datetime.datetime(2026, 2, 1, 0, 0)}]
    """
    return pa.table({
        "model": pa.array([r["model"] for r in releases], pa.string()),
        "released_at": pa.array([datetime.fromisoformat(r["released_at"].replace("Z", "+00:00"))
                                 .replace(tzinfo=None) for r in releases], pa.timestamp("us")),
    })
