"""When accounts send: weekly activity shapes, active days and hours, new-model adoption.

An account's session intensity in window hour ``h`` is
``rate * shape[profile][local hour of week] * day_mask[day] * active(h)``;
``rate`` is set so that the expected volume over the window is exactly the
account's planned volume (``shape_hours`` computes the denominator).
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

__all__ = ["HOUR_MS", "PROFILE_INDEX", "adoption_share", "hour_of_week_offset", "shape_hours",
           "shape_values", "weekly_shapes"]

HOUR_MS = 3_600_000
PROFILE_INDEX = {"waking": 0, "business": 1, "campus": 2, "flat": 3}

_WAKING = [0.15, 0.08, 0.05, 0.04, 0.04, 0.06, 0.15, 0.35, 0.6, 0.8, 0.9, 0.95,
           0.95, 0.9, 0.9, 0.9, 0.9, 0.95, 1.0, 1.1, 1.15, 1.05, 0.8, 0.45]
_BUSINESS = [0.03] * 8 + [0.4, 1.0, 1.0, 1.0, 0.7, 1.0, 1.0, 1.0, 1.0, 0.7, 0.3] + [0.08] * 5
_CAMPUS = [0.4, 0.2] + [0.05] * 6 + [0.3] + [0.9] * 9 + [1.0] * 6


def weekly_shapes() -> np.ndarray:
    """(profiles, 168) activity by local hour of the week (Monday 00:00 first), mean 1."""
    waking = np.array(_WAKING * 7)
    business = np.array(_BUSINESS * 5 + [0.05] * 48)
    campus = np.array(_CAMPUS * 5 + [v * 0.6 for v in _CAMPUS] * 2)
    flat = np.ones(168)
    shapes = np.stack([waking, business, campus, flat])
    return shapes / shapes.mean(axis=1, keepdims=True)


def hour_of_week_offset(start_ms: int) -> int:
    """Hour of the week (UTC, Monday 00:00 = 0) at which the window starts."""
    t = datetime.fromtimestamp(start_ms / 1000, tz=UTC)
    return t.weekday() * 24 + t.hour


def shape_values(shapes: np.ndarray, profile: np.ndarray, tz: np.ndarray, how0: int,
                 hours: np.ndarray, calendars: np.ndarray | None = None,
                 calendar: np.ndarray | None = None) -> np.ndarray:
    """(accounts, hours) shape at window ``hours`` in each account's own time zone, times
    its ``calendar`` (a row of ``calendars``: when its operator's or team's jobs run)."""
    local = (how0 + hours[None, :] + np.rint(tz).astype(np.int64)[:, None]) % 168
    values = shapes[profile[:, None], local]
    if calendars is not None and calendar is not None:
        values = values * calendars[calendar[:, None], hours[None, :]]
    return values


def shape_hours(shapes: np.ndarray, profile: np.ndarray, tz: np.ndarray, how0: int,
                day_mask: np.ndarray, active_from: np.ndarray, active_to: np.ndarray,
                calendars: np.ndarray | None = None,
                calendar: np.ndarray | None = None) -> np.ndarray:
    """Sum over the window of each account's shape on its active days and hours."""
    total = np.zeros(len(profile))
    hours_per_day = np.arange(24)
    for day in range(day_mask.shape[1]):
        hours = day * 24 + hours_per_day
        values = shape_values(shapes, profile, tz, how0, hours, calendars, calendar)
        on = (hours[None, :] >= active_from[:, None]) & (hours[None, :] < active_to[:, None])
        total += (values * on).sum(axis=1) * day_mask[:, day]
    return total


def adoption_share(t_hours: np.ndarray, adopt_at: np.ndarray, share: np.ndarray,
                   ramp: np.ndarray) -> np.ndarray:
    """Share of an account's traffic on the new model at window hour ``t_hours``."""
    progress = np.clip((t_hours - adopt_at) / np.maximum(ramp, 1e-6), 0.0, 1.0)
    return share * progress
