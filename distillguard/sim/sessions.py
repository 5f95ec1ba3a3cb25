"""The exchanges of one time slice, as integer arrays (content is attached later).

A *session* is what one account starts at one moment: a conversation sent
turn by turn, a single pipeline request, or a burst (a benchmark run, a
grading batch). Sessions are Poisson in each hour with the account's
intensity; lockstep groups add *ticks*, moments at which many accounts of one
group send the same kind of request within a second or two.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from distillguard.sim.content import ContentStore
from distillguard.sim.population import Population
from distillguard.sim.timing import HOUR_MS, shape_values

__all__ = ["Events", "slice_events"]

TURN_GAP_MEDIAN_S = 45.0      # reading an answer and typing the next turn
RUN_SPACING_S = (2.0, 10.0)   # seconds between requests of a benchmark run


@dataclass(frozen=True)
class Events:
    """Rows (one per exchange, sorted by time) and the sessions they belong to."""

    ts: np.ndarray
    entry: np.ndarray
    stream: np.ndarray
    session: np.ndarray
    s_acct: np.ndarray
    s_start: np.ndarray

    @property
    def acct(self) -> np.ndarray:
        return self.s_acct[self.session]

    def __len__(self) -> int:
        return len(self.ts)


def _own_sessions(pop: Population, shapes: np.ndarray, how0: int, hours: np.ndarray,
                  start_ms: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    live = np.flatnonzero((pop.rate > 0) & (pop.active_from < hours[-1] + 1)
                          & (pop.active_to > hours[0]))
    values = shape_values(shapes, pop.profile[live], pop.tz[live], how0, hours, pop.calendars,
                          pop.calendar[live])
    on = pop.day_mask[live][:, hours // 24] & (hours[None, :] >= pop.active_from[live, None]) \
        & (hours[None, :] < pop.active_to[live, None])
    counts = rng.poisson(pop.rate[live, None] * values * on)
    rows, cols = np.nonzero(counts)
    reps = counts[rows, cols]
    acct = np.repeat(live[rows], reps)
    start = start_ms + np.repeat(hours[cols], reps) * HOUR_MS \
        + rng.integers(0, HOUR_MS, len(acct))
    u = rng.random(len(acct))
    slot = (u[:, None] > pop.cum_weights[acct]).sum(axis=1)
    slot = np.minimum(slot, pop.streams.shape[1] - 1)
    return acct, start, pop.streams[acct, slot]


def _tick_sessions(pop: Population, shapes: np.ndarray, how0: int, hours: np.ndarray,
                   start_ms: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    accts, starts, streams = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)], \
        [np.zeros(0, np.int64)]
    for g in pop.lockstep:
        if g.wave:
            values = pop.calendars[g.calendar, hours]
            on = np.ones(len(hours), bool)
        else:
            m0 = g.members[:1]
            values = shape_values(shapes, pop.profile[m0], pop.tz[m0], how0, hours,
                                  pop.calendars, pop.calendar[m0])[0]
            on = pop.day_mask[m0[0], hours // 24] & (hours >= pop.active_from[m0[0]]) \
                & (hours < pop.active_to[m0[0]])
        n_ticks = rng.poisson(g.tick_rate * values * on)
        total = int(n_ticks.sum())
        if not total:
            continue
        tick_hour = np.repeat(hours, n_ticks)
        tick_ts = start_ms + tick_hour * HOUR_MS + rng.integers(0, HOUR_MS, total)
        takes = rng.random((total, len(g.members))) < g.participation[None, :]
        t, m = np.nonzero(takes)
        acct = g.members[m]
        if g.wave:   # only the accounts live at that hour take part, each with its own streams
            h = tick_hour[t]
            live = pop.day_mask[acct, h // 24] & (h >= pop.active_from[acct]) \
                & (h < pop.active_to[acct])
            t, acct = t[live], acct[live]
            slot = (rng.random(len(acct))[:, None] > pop.cum_weights[acct]).sum(axis=1)
            stream = pop.streams[acct, np.minimum(slot, pop.streams.shape[1] - 1)]
        else:
            p = g.stream_weights / g.stream_weights.sum()
            tick_stream = rng.choice(len(p), size=total, p=p)
            stream = g.member_streams[m, tick_stream[t]]
        accts.append(acct)
        starts.append(tick_ts[t] + rng.integers(0, g.spread_ms, len(t)))
        streams.append(stream.astype(np.int64))
    return np.concatenate(accts), np.concatenate(starts), np.concatenate(streams)


def _units(pop: Population, store: ContentStore, s_acct: np.ndarray, s_stream: np.ndarray,
           rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Expand sessions into units: (session, first entry, turns, offset in ms).

    An account with ``personal`` units keeps to that many units of each pool (a person
    comes back to the same few conversations), fixed by its ``personal_seed``.
    """
    sess, first, turns, offset = [], [], [], []
    for sid in np.unique(s_stream):
        pool_name, run = pop.stream_keys[int(sid)]
        pool = store.pools[pool_name]
        members = np.flatnonzero(s_stream == sid)
        size = len(pool)
        if run:
            base = rng.integers(0, size, len(members))
            k = np.tile(np.arange(run), len(members))
            unit = (np.repeat(base, run) + k) % size
            spacing = rng.uniform(*RUN_SPACING_S, len(members)) * 1000
            off = (k + rng.random(len(k))) * np.repeat(spacing, run)
            members = np.repeat(members, run)
        else:
            unit = rng.integers(0, size, len(members))
            keeps = pop.personal[s_acct[members]]
            own = keeps > 0
            if own.any():
                pick = (rng.random(int(own.sum())) * keeps[own]).astype(np.int64)
                seed = pop.personal_seed[s_acct[members[own]]]
                unit[own] = (seed * 2_654_435_761 + pick * 40_503) % size
            off = np.zeros(len(members))
        sess.append(members)
        first.append(pool.first[unit])
        turns.append(pool.turns[unit])
        offset.append(off)
    if not sess:
        empty = np.zeros(0, np.int64)
        return empty, empty, empty, empty
    return (np.concatenate(sess), np.concatenate(first), np.concatenate(turns).astype(np.int64),
            np.concatenate(offset).astype(np.int64))


def _forward(pop: Population, s_acct: np.ndarray, s_start: np.ndarray, start_ms: int,
             rng: np.random.Generator) -> np.ndarray:
    """Sessions a reseller forwards: sent from one of the forwarding campaign's accounts live
    at that hour instead of the user's own (the unit stays the user's)."""
    share = pop.forward_share[s_acct]
    moved = np.flatnonzero((share > 0) & (rng.random(len(s_acct)) < share))
    if not len(moved):
        return s_acct
    out = s_acct.copy()
    hour = (s_start[moved] - start_ms) // HOUR_MS
    target = pop.forward_to[s_acct[moved]]
    for k in np.unique(target):
        accounts = np.flatnonzero((pop.kind == k) & (pop.expected > 0))
        for h in np.unique(hour[target == k]):
            live = accounts[pop.day_mask[accounts, h // 24] & (pop.active_from[accounts] <= h)
                            & (pop.active_to[accounts] > h)]
            these = moved[(target == k) & (hour == h)]
            if len(live):
                out[these] = live[rng.integers(0, len(live), len(these))]
    return out


def slice_events(pop: Population, store: ContentStore, shapes: np.ndarray, how0: int,
                 start_ms: int, hours: np.ndarray, rng: np.random.Generator) -> Events:
    """Every exchange whose session starts in window ``hours``, sorted by time."""
    own = _own_sessions(pop, shapes, how0, hours, start_ms, rng)
    ticks = _tick_sessions(pop, shapes, how0, hours, start_ms, rng)
    s_acct, s_start, s_stream = (np.concatenate([a, b]) for a, b in zip(own, ticks, strict=True))
    u_sess, u_first, u_turns, u_off = _units(pop, store, s_acct, s_stream, rng)
    s_acct = _forward(pop, s_acct, s_start, start_ms, rng)
    r_unit = np.repeat(np.arange(len(u_sess)), u_turns)
    unit_row0 = np.concatenate([[0], np.cumsum(u_turns)[:-1]])
    turn = np.arange(len(r_unit)) - unit_row0[r_unit]
    gaps = np.where(turn > 0, TURN_GAP_MEDIAN_S * 1000
                    * np.exp(0.9 * rng.standard_normal(len(r_unit))), 0.0)
    csum = np.cumsum(gaps)
    within = csum - csum[unit_row0[r_unit]]
    session = u_sess[r_unit]
    ts = s_start[session] + u_off[r_unit] + within.astype(np.int64)
    order = np.argsort(ts, kind="stable")
    return Events(ts=ts[order], entry=(u_first[r_unit] + turn)[order],
                  stream=s_stream[session][order], session=session[order],
                  s_acct=s_acct, s_start=s_start)
