"""All simulated accounts, as columns: who they are, where from, what and when they send.

Archetypes (``legit_population``) and campaigns (``campaigns``) each produce an
``AccountBlock``; ``assemble_population`` concatenates them, draws every id
from one generator in one random order (so neither position nor shape of an id
tells legitimate from attack), and sets each account's rate so that its
expected volume over the window is the planned one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from distillguard.sim.clients import ClientTable
from distillguard.sim.content import ContentStore
from distillguard.sim.identity import hex_ids
from distillguard.sim.networks import IpTable
from distillguard.sim.timing import shape_hours, weekly_shapes

__all__ = ["TIERS", "AccountBlock", "Lockstep", "Population", "StreamTable",
           "assemble_population"]

TIERS = ("free", "pro", "team", "enterprise", "startup", "edu", "research")
MAX_STREAMS = 6


class StreamTable:
    """Distinct (pool, run) pairs, numbered; resolved against the content store."""

    def __init__(self) -> None:
        self.keys: list[tuple[str, int]] = []
        self._ids: dict[tuple[str, int], int] = {}

    def id(self, pool: str, run: int = 0) -> int:
        key = (pool, run)
        if key not in self._ids:
            self._ids[key] = len(self.keys)
            self.keys.append(key)
        return self._ids[key]

    def session_lengths(self, store: ContentStore) -> np.ndarray:
        """Expected exchanges per session of each stream."""
        return np.array([store.pools[p].mean_turns * max(run, 1) for p, run in self.keys])


@dataclass
class AccountBlock:
    """One archetype's or campaign's accounts (arrays of equal length ``n``)."""

    kind: int                      # index into Population.kinds
    group: np.ndarray              # group id, unique across blocks
    org_key: np.ndarray            # accounts with one key share an org id
    payment_key: np.ndarray        # -1: no payment method
    created_ms: np.ndarray
    tier: np.ndarray               # index into TIERS
    verified: np.ndarray
    tz: np.ndarray
    profile: np.ndarray
    day_mask: np.ndarray           # (n, days) bool
    active_from: np.ndarray        # window hours
    active_to: np.ndarray
    volume: np.ndarray             # planned exchanges over the window (own sessions)
    adopt_at: np.ndarray           # window hour the new model comes in
    adopt_share: np.ndarray
    adopt_ramp: np.ndarray
    small_share: np.ndarray
    image_share: np.ndarray
    ip_start: np.ndarray
    ip_len: np.ndarray
    ip_rotates: np.ndarray         # a new address per request (proxy pools)
    client: np.ndarray
    n_keys: np.ndarray
    streams: np.ndarray            # (n, MAX_STREAMS) stream ids, -1 unused
    weights: np.ndarray            # (n, MAX_STREAMS)
    calendar: np.ndarray | None = None   # index into the context's calendars (None: 0)
    forward_to: str | None = None  # a campaign that forwards some of these users' sessions
    forward_share: float = 0.0     # ... this share of them (``volume`` counts them too)
    personal: int = 0              # each account keeps to this many units of a pool (0: any)

    @property
    def n(self) -> int:
        return len(self.group)


@dataclass
class Lockstep:
    """Accounts that send in synchronized ticks: one template per tick, spread over members."""

    members: np.ndarray            # account indices (local to the block until assembled)
    participation: np.ndarray      # chance each member takes part in a tick
    tick_rate: float = 0.0         # ticks per shape-hour (set by ``assemble_population``)
    tick_volume: float = 0.0       # planned ticks over the window
    member_streams: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.int32))
    stream_weights: np.ndarray = field(default_factory=lambda: np.zeros(0))
    spread_ms: int = 1_500         # a tick's requests all start within this
    wave: bool = False             # a wave: the operator's schedule sets the ticks, each live
    calendar: int = 0              # member sends from its own streams (else lockstep)
    live_share: np.ndarray | None = None   # waves: share of the ticks each member is live for


@dataclass
class Population:
    kinds: list[str]               # archetype or campaign name per kind index
    actors: list[str | None]       # campaign name, None for legitimate kinds
    kind: np.ndarray
    account_id: pa.StringArray
    org_id: pa.StringArray
    payment: pa.Array
    keys: pa.StringArray
    key_start: np.ndarray
    key_len: np.ndarray
    tier: np.ndarray
    verified: np.ndarray
    created_ms: np.ndarray
    tz: np.ndarray
    profile: np.ndarray
    day_mask: np.ndarray
    active_from: np.ndarray
    active_to: np.ndarray
    rate: np.ndarray               # own sessions per shape-hour
    adopt_at: np.ndarray
    adopt_share: np.ndarray
    adopt_ramp: np.ndarray
    small_share: np.ndarray
    image_share: np.ndarray
    ip_start: np.ndarray
    ip_len: np.ndarray
    ip_rotates: np.ndarray
    client: np.ndarray
    streams: np.ndarray
    cum_weights: np.ndarray
    stream_keys: list[tuple[str, int]]
    lockstep: list[Lockstep]
    ips: IpTable
    clients: ClientTable
    expected: np.ndarray           # planned exchanges per account (own sessions and ticks)
    calendars: np.ndarray          # (calendars, window hours) intensity; row 0 always on
    calendar: np.ndarray           # per account: its row of ``calendars``
    personal: np.ndarray           # per account: units it keeps to in a pool (0: any)
    personal_seed: np.ndarray
    forward_to: np.ndarray         # per account: kind that forwards its sessions, -1 none
    forward_share: np.ndarray

    @property
    def n(self) -> int:
        return len(self.kind)


def _concat(blocks: list[AccountBlock], name: str) -> np.ndarray:
    return np.concatenate([getattr(b, name) for b in blocks])


def _shared_ids(rng: np.random.Generator, keys: np.ndarray, kind: str) -> pa.Array:
    """One id per distinct non-negative key (in random order), null for -1."""
    uniq, inverse = np.unique(keys, return_inverse=True)
    ids = hex_ids(rng, len(uniq), kind)
    missing = keys < 0
    return ids.take(pa.array(inverse.astype(np.int64), mask=missing))


def _per_block(blocks: list[AccountBlock], value: Callable[[AccountBlock], object],
               dtype: type) -> np.ndarray:
    """A per-block value for each account."""
    return np.concatenate([np.full(b.n, value(b), dtype) for b in blocks])


def assemble_population(blocks: list[AccountBlock], lockstep: list[list[Lockstep]],
                        kinds: list[str], actors: list[str | None], streams: StreamTable,
                        store: ContentStore, ips: IpTable, clients: ClientTable,
                        how0: int, rng: np.random.Generator,
                        calendars: list[np.ndarray] | None = None) -> Population:
    """Concatenate the blocks, draw ids, and set rates from planned volumes.

    Sessions a campaign forwards for users of a legitimate archetype (a reseller) count in
    that campaign's planned volume: its own volume shrinks by as much.
    """
    offsets = np.cumsum([0] + [b.n for b in blocks])
    ticks = [g for block_groups, off in zip(lockstep, offsets, strict=False)
             for g in _shift(block_groups, int(off))]
    n = int(offsets[-1])
    kind = np.concatenate([np.full(b.n, b.kind, np.int16) for b in blocks])
    # ids in a random order over all accounts: their order in the log says nothing either
    account_id = hex_ids(rng, n, "account")
    org_key = _concat(blocks, "org_key")
    payment_key = _concat(blocks, "payment_key")
    n_keys = _concat(blocks, "n_keys").astype(np.int64)
    key_start = np.concatenate([[0], np.cumsum(n_keys)[:-1]])
    weights = _concat(blocks, "weights")
    stream_ids = _concat(blocks, "streams")
    lengths = streams.session_lengths(store)
    mean_len = np.where(stream_ids >= 0, weights * lengths[np.maximum(stream_ids, 0)], 0).sum(1)
    total_w = weights.sum(1)
    mean_len = np.where(total_w > 0, mean_len / np.maximum(total_w, 1e-12), 1.0)
    session_len = np.maximum(mean_len, 1.0)
    cum = np.cumsum(weights, axis=1) / np.maximum(total_w, 1e-12)[:, None]

    shapes = weekly_shapes()
    profile = _concat(blocks, "profile")
    tz = _concat(blocks, "tz")
    day_mask = _concat(blocks, "day_mask")
    active_from, active_to = _concat(blocks, "active_from"), _concat(blocks, "active_to")
    volume = _concat(blocks, "volume").astype(float)
    hours = day_mask.shape[1] * 24
    cal_table = np.stack(calendars) if calendars else np.ones((1, hours), np.float32)
    calendar = np.concatenate([b.calendar if b.calendar is not None else np.zeros(b.n, np.int64)
                               for b in blocks]).astype(np.int64)
    forward_to = _per_block(blocks, lambda b: kinds.index(b.forward_to)
                            if b.forward_to in kinds else -1, np.int16)
    forward_share = np.where(forward_to >= 0,
                             _per_block(blocks, lambda b: b.forward_share, float), 0.0)
    denom = shape_hours(shapes, profile, tz, how0, day_mask, active_from, active_to, cal_table,
                        calendar)
    forward_share = np.where(denom > 0, forward_share, 0.0)   # who never sends, forwards none
    forwarded = _forwarded_volume(kind, volume, forward_to, forward_share)
    volume = volume * np.where(forwarded > 0, 1 - forwarded, 1.0)
    rate = np.where(denom > 0, volume / np.maximum(denom, 1e-12) / mean_len, 0.0)
    expected = np.where(denom > 0, volume * (1 - forward_share), 0.0)
    for k in np.unique(forward_to[forward_to >= 0]):
        target = kind == k
        sent = float((volume * forward_share)[forward_to == k].sum())
        expected[target] += sent * volume[target] / max(float(volume[target].sum()), 1e-12)
    for g in ticks:
        m = g.members[:1]
        if g.wave:   # the operator's schedule, in UTC, over the whole window
            g_denom = float(cal_table[g.calendar].sum())
        else:
            g_denom = shape_hours(shapes, profile[m], tz[m], how0, day_mask[m], active_from[m],
                                  active_to[m], cal_table, calendar[m])[0]
        g.tick_rate = g.tick_volume / g_denom if g_denom > 0 else 0.0
        if g_denom > 0:
            live = g.live_share if g.live_share is not None else 1.0
            length = session_len[g.members] if g.wave else 1.0
            expected[g.members] += g.tick_volume * g.participation * live * length
    return Population(
        kinds=kinds, actors=actors, kind=kind, account_id=account_id,
        org_id=_shared_ids(rng, org_key, "org"),
        payment=_shared_ids(rng, payment_key, "payment"),
        keys=hex_ids(rng, int(n_keys.sum()), "api_key"), key_start=key_start, key_len=n_keys,
        tier=_concat(blocks, "tier"), verified=_concat(blocks, "verified"),
        created_ms=_concat(blocks, "created_ms"), tz=tz, profile=profile, day_mask=day_mask,
        active_from=active_from, active_to=active_to, rate=rate,
        adopt_at=_concat(blocks, "adopt_at"), adopt_share=_concat(blocks, "adopt_share"),
        adopt_ramp=_concat(blocks, "adopt_ramp"), small_share=_concat(blocks, "small_share"),
        image_share=_concat(blocks, "image_share"), ip_start=_concat(blocks, "ip_start"),
        ip_len=_concat(blocks, "ip_len"), ip_rotates=_concat(blocks, "ip_rotates"),
        client=_concat(blocks, "client"), streams=stream_ids, cum_weights=cum,
        stream_keys=list(streams.keys), lockstep=ticks, ips=ips, clients=clients,
        expected=expected, calendars=cal_table, calendar=calendar,
        personal=_per_block(blocks, lambda b: b.personal, np.int32),
        personal_seed=rng.integers(0, 2**31, n), forward_to=forward_to,
        forward_share=forward_share)


def _forwarded_volume(kind: np.ndarray, volume: np.ndarray, forward_to: np.ndarray,
                      share: np.ndarray) -> np.ndarray:
    """Per account of a forwarding campaign: the share of its planned volume that is other
    users' forwarded sessions (0 elsewhere), at most 0.9."""
    out = np.zeros(len(kind))
    for k in np.unique(forward_to[forward_to >= 0]):
        target = kind == k
        own = float(volume[target].sum())
        sent = float((volume * share)[forward_to == k].sum())
        out[target] = min(0.9, sent / own) if own > 0 else 0.0
    return out


def _shift(groups: list[Lockstep], offset: int) -> list[Lockstep]:
    for g in groups:
        g.members = g.members + offset
    return groups
