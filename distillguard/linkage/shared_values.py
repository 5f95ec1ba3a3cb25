"""Accounts tied by a shared value: a payment method, an egress IP, a client fingerprint.

Members of each group of accounts sharing a value are chained (a path, not a
clique), which keeps them connected with one edge per member. Values shared
by more than ``max_group`` accounts are ignored: a browser's fingerprint, a
cloud's NAT or a campus egress is shared by crowds of strangers and ties
nobody together.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

__all__ = ["shared_value_edges"]


def shared_value_edges(values: Sequence[object | None], *, max_group: int
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Edges ``(source, target)`` between accounts (by position) sharing a non-null value."""
    groups: dict[object, list[int]] = defaultdict(list)
    for i, value in enumerate(values):
        if value is not None and value != "":
            groups[value].append(i)
    sources: list[int] = []
    targets: list[int] = []
    for members in groups.values():
        if 2 <= len(members) <= max_group:
            sources.extend(members[:-1])
            targets.extend(members[1:])
    return np.asarray(sources, dtype=np.int64), np.asarray(targets, dtype=np.int64)
