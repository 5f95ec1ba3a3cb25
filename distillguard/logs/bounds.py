"""Plausible ranges of exchange-log values.

A value of the right type can still be impossible: a negative token count, an
exchange stamped in 2150 (a wrong clock). Accepted, it would stretch the store's
time range and skew every sum built on it, so such a record is quarantined as
``out_of_range`` with the bound it broke in the reason.

Timestamps outside 2000..2200 (``schema.TS_MIN_MS``/``TS_MAX_MS``) are not
instants at all but unit mix-ups (seconds for milliseconds) and stay
``bad_timestamp``. Inside that window, no exchange can be later than the clock
of the machine reading the log plus ``MAX_CLOCK_SKEW``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

__all__ = ["INT_RANGES", "MAX_CLOCK_SKEW", "int_out_of_range", "latest_allowed_ms",
           "ms_to_iso", "too_late_reason"]

# How far ahead of the reading machine's clock a timestamp may be (clocks of the
# servers that wrote the log drift). The bound is then rounded up to the next UTC
# midnight, so every file read on one day is held to the same bound.
MAX_CLOCK_SKEW = timedelta(days=1)
_DAY_MS = 86_400_000

# Inclusive (minimum, maximum) of integer fields; None: no bound on that side.
INT_RANGES: dict[str, tuple[int | None, int | None]] = {
    "input_tokens": (0, None),
    "output_tokens": (0, None),
    "asn": (0, 4_294_967_295),  # autonomous system numbers are 32-bit unsigned
}


def latest_allowed_ms(now: datetime | None = None) -> int:
    """The latest timestamp (epoch ms, exclusive) a record read at ``now`` may carry."""
    now = now or datetime.now(UTC)
    ahead = int((now + MAX_CLOCK_SKEW).timestamp() * 1000)
    return (ahead // _DAY_MS + 1) * _DAY_MS


def ms_to_iso(ms: int) -> str:
    """``1772467200000`` as ``2026-03-02T16:00:00Z`` (milliseconds shown when not zero)."""
    dt = datetime.fromtimestamp(ms / 1000, UTC)
    spec = "milliseconds" if ms % 1000 else "seconds"
    return dt.replace(tzinfo=None).isoformat(timespec=spec) + "Z"


def too_late_reason(name: str, ms: int, latest_ms: int) -> str:
    """Why timestamp ``ms`` of field ``name``, at or after ``latest_ms``, is out of range."""
    skew = MAX_CLOCK_SKEW.days
    return (f"field '{name}' is {ms_to_iso(ms)}, not before the latest allowed time "
            f"{ms_to_iso(latest_ms)} (the day of reading plus {skew} day(s) of clock skew)")


def int_out_of_range(name: str, value: int) -> str | None:
    """Why integer ``value`` of field ``name`` is out of range, or None when it is not."""
    low, high = INT_RANGES.get(name, (None, None))
    if low is not None and value < low:
        return f"field '{name}' is {value}, below the minimum {low}"
    if high is not None and value > high:
        return f"field '{name}' is {value}, above the maximum {high}"
    return None
