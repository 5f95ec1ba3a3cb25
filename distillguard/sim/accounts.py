"""Account attributes shared by legitimate archetypes and campaigns.

``BuildContext`` carries the generators and counters every block draws from,
so that legitimate and attack accounts get their ids, addresses, clients and
ages from the same code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from distillguard.errors import InputError
from distillguard.sim.clients import Clients
from distillguard.sim.content import ContentStore
from distillguard.sim.networks import Networks
from distillguard.sim.population import MAX_STREAMS, TIERS, StreamTable
from distillguard.sim.scenario import Adoption, Behavior, Creation, Schedule, Stream
from distillguard.sim.timing import HOUR_MS, PROFILE_INDEX

__all__ = ["BuildContext", "adoption", "available", "created", "day_masks", "job_calendar",
           "lognormal", "profile_index", "shared_streams", "stream_matrix", "tiers"]

DAY_MS = 24 * HOUR_MS
MAX_AGE_DAYS = 1100   # the provider opened its API about three years before the window


@dataclass
class BuildContext:
    rng: np.random.Generator
    networks: Networks
    clients: Clients
    streams: StreamTable
    store: ContentStore
    start_ms: int
    days: int
    release_hour: float
    next_group: int = 0
    next_key: int = 0
    notes: list[str] = field(default_factory=list)
    calendars: list[np.ndarray] = field(default_factory=list)

    @property
    def hours(self) -> int:
        return self.days * 24

    def calendar(self, values: np.ndarray | None = None) -> int:
        """Register an hourly intensity over the window; returns its index (0: always on)."""
        if not self.calendars:
            self.calendars.append(np.ones(self.hours, np.float32))
        if values is None:
            return 0
        self.calendars.append(values.astype(np.float32))
        return len(self.calendars) - 1

    def groups(self, n: int) -> np.ndarray:
        out = np.arange(self.next_group, self.next_group + n)
        self.next_group += n
        return out

    def keys(self, n: int) -> np.ndarray:
        """``n`` fresh org/payment keys (distinct from every other block's)."""
        out = np.arange(self.next_key, self.next_key + n)
        self.next_key += n
        return out


def lognormal(rng: np.random.Generator, median: float, sigma: float, n: int) -> np.ndarray:
    return median * np.exp(sigma * rng.standard_normal(n)) if sigma > 0 else np.full(n, median)


def tiers(rng: np.random.Generator, shares: dict[str, float], n: int) -> np.ndarray:
    names = list(shares)
    p = np.array([shares[k] for k in names], dtype=float)
    picks = rng.choice(len(names), size=n, p=p / p.sum())
    return np.array([TIERS.index(k) for k in names], dtype=np.int8)[picks]


def created(ctx: BuildContext, new_share: float, first_active_h: np.ndarray,
            creation: Creation | None = None, *, spread_scale: float = 1.0,
            group: np.ndarray | None = None) -> np.ndarray:
    """Account opening times: a ``new_share`` opened within 45 days before first use.

    With ``creation`` the new accounts are opened in batches, within a group (``group``:
    a campus, a company; else all), in the order they are first used: about
    ``creation.batch`` accounts within ``creation.spread_hours`` (times ``spread_scale``).
    """
    rng = ctx.rng
    n = len(first_active_h)
    first_ms = ctx.start_ms + first_active_h.astype(np.int64) * HOUR_MS
    fresh = rng.random(n) < new_share
    young = (rng.random(n) * 45 * DAY_MS).astype(np.int64)
    age = lognormal(rng, 400, 0.8, n)
    too_old = age > MAX_AGE_DAYS   # redrawn, not clipped: no crowd of accounts on one day
    age[too_old] = rng.uniform(MAX_AGE_DAYS / 2, MAX_AGE_DAYS, int(too_old.sum()))
    old = (age * DAY_MS).astype(np.int64)
    out = first_ms - np.where(fresh, young, old) - rng.integers(0, HOUR_MS, n)
    if creation is None:
        return out
    idx = np.flatnonzero(fresh)
    keys = group[idx] if group is not None else np.zeros(len(idx), np.int64)
    order = np.lexsort((first_ms[idx], keys))
    idx, keys = idx[order], keys[order]
    spread = creation.spread_hours * spread_scale * HOUR_MS
    start = 0
    while start < len(idx):
        size = max(1, int(rng.poisson(creation.batch)))
        end = start + 1
        while end < len(idx) and end - start < size and keys[end] == keys[start]:
            end += 1
        members = idx[start:end]
        opened = first_ms[members].min() - int(rng.random() * 45 * DAY_MS) - int(spread)
        jitter = (rng.random(len(members)) * spread).astype(np.int64)
        out[members] = np.minimum(opened + jitter,
                                  first_ms[members] - rng.integers(60_000, HOUR_MS, len(members)))
        start = end
    return out


def job_calendar(ctx: BuildContext, spec: Schedule, *, every_day: bool = False) -> np.ndarray:
    """Hourly intensity over the window when jobs run on a schedule (``Schedule``): 1 during
    a run, ``floor`` between runs, a fifth of that on days without runs."""
    rng = ctx.rng
    on = np.ones(ctx.days, bool) if every_day else rng.random(ctx.days) < spec.days
    if not on.any():
        on[rng.integers(ctx.days)] = True
    out = np.repeat(np.where(on, spec.floor, spec.floor / 5), 24).astype(np.float32)
    for day in np.flatnonzero(on):
        for _ in range(max(1, round(rng.uniform(*spec.windows)))):
            begin = int(day * 24 + rng.integers(0, 24))
            out[begin:begin + max(1, round(rng.uniform(*spec.hours)))] = 1.0
    return out


def day_masks(ctx: BuildContext, share: float, n: int,
              within: np.ndarray | None = None) -> np.ndarray:
    """(n, days): the days each account is used, at least one; only days ``within`` if given
    (the days its operator's jobs run)."""
    mask = ctx.rng.random((n, ctx.days)) < share
    days = np.arange(ctx.days)
    if within is not None and within.any():
        mask &= within[None, :]
        days = np.flatnonzero(within)
    empty = ~mask.any(axis=1)
    mask[np.flatnonzero(empty), ctx.rng.choice(days, int(empty.sum()))] = True
    return mask


def adoption(ctx: BuildContext, spec: Adoption, n: int,
             group: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """When (window hour), how much and how fast each account moves to the new model.

    ``group`` makes members of one group (an app, a team) move together; a
    coordinated campaign moves as one, with minutes of spread.
    """
    median, sigma = spec.delay_hours
    if spec.coordinated:
        delay = lognormal(ctx.rng, median, sigma, 1) + ctx.rng.normal(0, 0.5, n)
    elif group is not None:
        uniq, inverse = np.unique(group, return_inverse=True)
        delay = lognormal(ctx.rng, median, sigma, len(uniq))[inverse]
    else:
        delay = lognormal(ctx.rng, median, sigma, n)
    share = ctx.rng.uniform(spec.share[0], spec.share[1], n)
    return ctx.release_hour + np.maximum(delay, 0.25), share, np.full(n, spec.ramp_hours)


def stream_matrix(ctx: BuildContext, chosen: list[list[tuple[str, int, float]]]
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Per-account lists of (pool, run, weight) as fixed-width id and weight matrices."""
    n = len(chosen)
    ids = np.full((n, MAX_STREAMS), -1, dtype=np.int32)
    weights = np.zeros((n, MAX_STREAMS))
    for i, row in enumerate(chosen):
        for j, (pool, run, w) in enumerate(row[:MAX_STREAMS]):
            if pool not in ctx.store.pools:
                known = ", ".join(sorted({k.split("@")[0].split("~")[0] for k in ctx.store.pools}))
                msg = f"stream pool {pool!r} does not exist (known: {known})"
                raise InputError(msg)
            ids[i, j] = ctx.streams.id(pool, run)
            weights[i, j] = w
    return ids, weights


def shared_streams(ctx: BuildContext, row: list[tuple[str, int, float]],
                   n: int) -> tuple[np.ndarray, np.ndarray]:
    """The same streams for ``n`` accounts."""
    ids, weights = stream_matrix(ctx, [row])
    return np.repeat(ids, n, axis=0), np.repeat(weights, n, axis=0)


def available(ctx: BuildContext, streams: tuple[Stream, ...]) -> list[Stream]:
    """The streams whose pool was built (attack corpora outside the split are not)."""
    return [s for s in streams if s.pool in ctx.store.pools or s.pool == "app"]


def profile_index(behavior: Behavior) -> int:
    return PROFILE_INDEX[behavior.profile]
