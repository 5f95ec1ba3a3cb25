"""Confidence bounds for shares measured on a few requests."""

from __future__ import annotations

import math

__all__ = ["wilson_lower_bound"]

Z_95 = 1.959963984540054


def wilson_lower_bound(share: float, n: int, *, z: float = Z_95) -> float:
    """Lower end of the Wilson score interval for a share observed on ``n`` trials.

    >>> round(wilson_lower_bound(1 / 3, 3), 3)
    0.061
    >>> round(wilson_lower_bound(0.66, 450), 3)
    0.615
    """
    if n <= 0:
        return 0.0
    denominator = 1 + z * z / n
    centre = share + z * z / (2 * n)
    margin = z * math.sqrt(share * (1 - share) / n + z * z / (4 * n * n))
    return max(0.0, (centre - margin) / denominator)
