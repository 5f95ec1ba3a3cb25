"""Attack accounts: the report's campaigns, and what each evasion knob changes about them.

Without evasion a campaign shows what gave the real ones away: shared
infrastructure (datacenter blocks, a rotating residential-proxy pool), one
custom client, payment methods pooled across accounts, 24/7 or lockstep
timing, narrow targeting with verbatim pipeline templates. Each knob removes
one of these:

- ``infra``: every account its own residential addresses, payment method and
  an ordinary client (browser or SDK, drawn like a chat user's);
- ``timing``: no lockstep, and human waking hours in the account's time zone;
- ``volume``: low and slow: active on nearly every day of the whole window,
  with little spread between accounts, so none stands out by volume;
- ``mixing``: a larger share of ordinary users' chat in every account;
- ``templates``: each account sends its own re-worded variant of the templates;
- ``paraphrase``: every templated request is reworded on its own (``paraphrase``,
  applied when the text is written).

Whatever it evades, a campaign stays one operator: its accounts are opened in
batches (``creation``), its jobs run on its own schedule (``schedule``), its
orchestrator sends waves of requests from many accounts at once unless it
evades on timing (``waves``), its residential IPs come from its own vendor's
country mix (``vendor``) and its automation passes for a few ordinary clients
(``clients``), and it moves to a new model on its own delay.
"""

from __future__ import annotations

import contextlib

import numpy as np

from distillguard.errors import InputError
from distillguard.sim.accounts import (
    BuildContext,
    adoption,
    available,
    created,
    day_masks,
    job_calendar,
    lognormal,
    stream_matrix,
    tiers,
)
from distillguard.sim.attack_content import ATTACK_CORPORA, style_pool
from distillguard.sim.legit_content import CHAT_POOLS
from distillguard.sim.operator import SharedOperator
from distillguard.sim.population import MAX_STREAMS, TIERS, AccountBlock, Lockstep
from distillguard.sim.scenario import Campaign, Stream, Waves
from distillguard.sim.timing import PROFILE_INDEX

__all__ = ["campaign_block"]

_MIX_WEIGHTS = {"chat_hh": 0.45, "chat_sharegpt": 0.45, "dolly": 0.1}
INFRA_CREATION_SPREAD = 8.0   # with evasion infra, a batch of accounts opens over more hours
_FREE = TIERS.index("free")


def _attack_streams(ctx: BuildContext, spec: Campaign) -> list[Stream]:
    """The campaign's streams whose corpus was selected; if none was, every selected corpus."""
    streams = [s for s in available(ctx, spec.streams) if s.pool not in CHAT_POOLS]
    if any(s.pool in ATTACK_CORPORA for s in streams):
        return streams
    selected = [p for p in ATTACK_CORPORA if p in ctx.store.pools]
    if not selected:
        msg = f"campaign {spec.name!r} has nothing to send: no attack corpus was selected"
        raise InputError(msg)
    ctx.notes.append(f"{spec.name}: none of its corpora selected; sends {', '.join(selected)}")
    return streams + [Stream(p, 1.0 / len(selected)) for p in selected]


def _split(rng: np.random.Generator, n: int, shares: list[float]) -> np.ndarray:
    """Group index per account, sizes proportional to ``shares`` (each at least 1 if n allows)."""
    s = np.asarray(shares, float) / sum(shares)
    sizes = np.maximum(np.floor(s * n).astype(int), 1 if n >= len(s) else 0)
    sizes[np.argmax(sizes)] += n - sizes.sum()
    return rng.permutation(np.repeat(np.arange(len(s)), sizes))


def _pick_streams(rng: np.random.Generator, streams: list[Stream], k: int) -> list[int]:
    w = np.array([s.weight for s in streams])
    k = min(k, len(streams))
    return list(rng.choice(len(streams), size=k, replace=False, p=w / w.sum()))


def _pool(stream: Stream, style: int) -> str:
    if style >= 0 and stream.pool in ATTACK_CORPORA:
        return style_pool(stream.pool, style)
    return stream.pool


def _rows(ctx: BuildContext, attack: list[Stream], n: int, *, specialize: int, mix: float,
          styles: np.ndarray) -> list[list[tuple[str, int, float]]]:
    """Per account: its few attack streams (narrow targeting) and its share of ordinary chat.

    ``mix`` is a share of exchanges; stream weights are shares of sessions, so each
    weight is divided by its session length (a chat conversation is several exchanges).
    """
    rng = ctx.rng
    rows = []
    for i in range(n):
        picks = _pick_streams(rng, attack, specialize) if specialize else range(len(attack))
        w = rng.dirichlet(np.ones(len(picks)) * 2.0) if specialize else \
            np.array([attack[j].weight for j in picks])
        row = [(_pool(attack[j], int(styles[i])), attack[j].run, float(wj) / w.sum() * (1 - mix))
               for j, wj in zip(picks, w, strict=True)]
        if mix > 0:
            row += _chat_rows(mix)
        rows.append(_per_session(ctx, row)[:MAX_STREAMS])
    return rows


def _chat_rows(share: float) -> list[tuple[str, int, float]]:
    return [(pool, 0, share * w) for pool, w in _MIX_WEIGHTS.items()]


def _per_session(ctx: BuildContext, row: list[tuple[str, int, float]]
                 ) -> list[tuple[str, int, float]]:
    """Exchange shares to session weights."""
    return [(pool, run, w / (ctx.store.pools[pool].mean_turns * max(run, 1)))
            for pool, run, w in row]


def _lifetimes(ctx: BuildContext, spec: Campaign, n: int,
               low_and_slow: bool) -> tuple[np.ndarray, np.ndarray]:
    hours = ctx.hours
    if spec.lifetime_days is None or low_and_slow:
        return np.zeros(n, np.int64), np.full(n, hours, np.int64)
    length = ctx.rng.uniform(*spec.lifetime_days, n) * 24
    start = ctx.rng.uniform(-0.5 * length, hours - 0.5 * length)
    lo = np.clip(start, 0, hours - 24).astype(np.int64)
    hi = np.clip(start + length, lo + 24, hours).astype(np.int64)
    return lo, hi


def _infrastructure(ctx: BuildContext, network: str, members: np.ndarray, spec: Campaign,
                    evade: bool, vendor: np.ndarray | None
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(ip_start, ip_len, rotates, country) for accounts ``members`` of one group."""
    n = len(members)
    if evade or network == "residential":
        country = ctx.networks.draw_countries(n, proxy=True, weights=vendor)
        per = 1 + (ctx.rng.random(n) < 0.35) + (ctx.rng.random(n) < 0.1)
        start, length = ctx.networks.own_residential(country, per)
        return start, length, np.zeros(n, bool), country
    if network == "proxy":
        size = max(8, int(spec.proxy_exits_per_account * n))
        start, length = ctx.networks.proxy_pool(size, vendor)
        country = ctx.networks.draw_countries(n, proxy=True, weights=vendor)
        return np.full(n, start), np.full(n, length), np.ones(n, bool), country
    size = max(2, n // 8) if network == "datacenter" else 3
    start, length, country = ctx.networks.hosted_block("cloud", size)
    return np.full(n, start), np.full(n, length), np.ones(n, bool), np.full(n, country)


def campaign_block(spec: Campaign, kind: int, scale: float, evasion: frozenset[str],
                   evasion_mix: float, styles: int, ctx: BuildContext,
                   operator: SharedOperator | None = None) -> tuple[AccountBlock, list[Lockstep]]:
    rng = ctx.rng
    attack = _attack_streams(ctx, spec)
    n = max(spec.min_accounts, round(spec.accounts * scale))
    total = spec.exchanges * scale
    low_and_slow = "volume" in evasion
    lockstep = spec.lockstep and "timing" not in evasion
    mix = evasion_mix if "mixing" in evasion else spec.mix
    pathways = spec.pathways or ()
    if pathways:
        local = _split(rng, n, [p.share for p in pathways])
    else:
        n_groups = min(n, max(1, round(spec.groups * n / spec.accounts)))
        local = _split(rng, n, [1.0] * n_groups)
    n_groups = int(local.max()) + 1
    group = ctx.groups(n_groups)[local]

    volume = lognormal(rng, 1.0, 0.25 if low_and_slow else spec.volume_sigma, n)
    volume = volume / volume.sum() * total
    active_from, active_to = _lifetimes(ctx, spec, n, low_and_slow)
    share_days = max(spec.active_days, 0.9) if low_and_slow else spec.active_days
    calendar = ctx.calendar(job_calendar(ctx, spec.schedule, every_day=low_and_slow)) \
        if spec.schedule else ctx.calendar()
    # an operator's accounts work on the days its jobs run
    run_days = ctx.calendars[calendar].reshape(ctx.days, 24).max(axis=1) >= 1.0 \
        if spec.schedule else None
    day_mask = day_masks(ctx, share_days, n, within=run_days)

    ip_start, ip_len = np.zeros(n, np.int64), np.zeros(n, np.int64)
    rotates, country = np.zeros(n, bool), np.zeros(n, np.int64)
    client = np.zeros(n, np.int64)
    tier = np.zeros(n, np.int8)
    evade_infra = "infra" in evasion
    with operator.traits(ctx) if operator else contextlib.nullcontext():
        vendor = ctx.networks.vendor_weights(spec.vendor) if spec.vendor > 0 else None
        automation, automation_p = ctx.clients.consumer_set(spec.clients)
    for g in range(n_groups):
        members = np.flatnonzero(local == g)
        network = pathways[g].network if pathways else spec.network
        with operator.group_infrastructure(ctx) if operator else contextlib.nullcontext():
            ip_start[members], ip_len[members], rotates[members], country[members] = \
                _infrastructure(ctx, network, members, spec, evade_infra, vendor)
            client[members] = ctx.rng.choice(automation, size=len(members), p=automation_p) \
                if evade_infra else ctx.clients.custom()
        tier[members] = tiers(rng, pathways[g].tiers if pathways else spec.tiers, len(members))
    if evade_infra:
        payment = np.where(tier == _FREE, -1, ctx.keys(n))
    else:  # instruments pooled within each group, about ``payment_pooled`` accounts each
        payment = np.full(n, -1, np.int64)
        for g in range(n_groups):
            members = np.flatnonzero(local == g)
            cards = ctx.keys(max(1, round(len(members) / spec.payment_pooled)))
            payment[members] = rng.choice(cards, size=len(members))
    profile = PROFILE_INDEX["waking" if "timing" in evasion else spec.profile]
    tz = ctx.networks.draw_tz(country)
    style = rng.integers(0, styles, n) if "templates" in evasion and styles else np.full(n, -1)

    groups_out: list[Lockstep] = []
    if lockstep:
        chat = _per_session(ctx, _chat_rows(1.0))
        stream_rows = [chat if mix else [] for _ in range(n)]
        own_volume = volume * mix
        for g in range(n_groups):
            members = np.flatnonzero(local == g)
            tick_v = (volume[members] * (1 - mix))
            day_mask[members] = day_mask[members[0]]
            active_from[members], active_to[members] = active_from[members[0]], \
                active_to[members[0]]
            per_member = [[(_pool(s, int(style[m])), s.run, 1.0) for s in attack]
                          for m in members]
            member_streams, _ = stream_matrix(ctx, per_member)
            groups_out.append(Lockstep(
                members=members, participation=tick_v / tick_v.max(),
                tick_volume=float(tick_v.max()), member_streams=member_streams[:, :len(attack)],
                stream_weights=np.array([s.weight for s in attack])))
    else:
        stream_rows = _rows(ctx, attack, n, specialize=spec.specialize, mix=mix, styles=style)
        own_volume = volume
    streams, weights = stream_matrix(ctx, [r or [("chat_hh", 0, 0.0)] for r in stream_rows])
    if spec.waves and not lockstep and "timing" not in evasion:
        lengths = ctx.streams.session_lengths(ctx.store)[np.maximum(streams, 0)]
        session_len = (weights * lengths).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-12)
        wave, own_volume = _waves(ctx, spec.waves, volume, session_len, calendar, day_mask,
                                  active_from, active_to)
        groups_out.append(wave)
    adopt_at, adopt_share, ramp = adoption(ctx, spec.adoption, n)
    return AccountBlock(
        kind=kind, group=group, org_key=ctx.keys(n), payment_key=payment,
        created_ms=created(ctx, spec.new_accounts, active_from, spec.creation,
                           spread_scale=INFRA_CREATION_SPREAD if evade_infra else 1.0),
        tier=tier,
        verified=rng.random(n) < spec.verified, tz=tz, profile=np.full(n, profile, np.int8),
        day_mask=day_mask, active_from=active_from, active_to=active_to, volume=own_volume,
        adopt_at=adopt_at, adopt_share=adopt_share, adopt_ramp=ramp,
        small_share=np.clip(spec.small_model * rng.uniform(0, 2, n), 0, 1),
        image_share=np.full(n, spec.image_share), ip_start=ip_start, ip_len=ip_len,
        ip_rotates=rotates, client=client, n_keys=1 + (rng.random(n) < 0.4),
        streams=streams, weights=weights, calendar=np.full(n, calendar)), groups_out


def _waves(ctx: BuildContext, spec: Waves, volume: np.ndarray, session_len: np.ndarray,
           calendar: int, day_mask: np.ndarray, active_from: np.ndarray, active_to: np.ndarray
           ) -> tuple[Lockstep, np.ndarray]:
    """The operator's waves, and what each account still sends on its own (exchanges).

    A wave goes to the accounts live at its hour, so each account's chance to take part is
    raised by the share of the schedule it is live for: its planned volume holds. Each
    participant starts one session (``session_len`` exchanges on average).
    """
    cal = ctx.calendars[calendar]
    hours = np.arange(len(cal))
    live = day_mask[:, hours // 24] & (hours[None, :] >= active_from[:, None]) \
        & (hours[None, :] < active_to[:, None])
    live_share = np.maximum((live * cal[None, :]).sum(axis=1) / cal.sum(), 1e-3)
    in_waves = volume * spec.share / np.maximum(session_len, 1.0)     # sessions
    # a wave cannot be larger than the accounts live at its hour (with some room)
    size = min(float(np.mean(spec.size)), 0.8 * float(live_share.sum()))
    ticks = float(in_waves.sum()) / max(size, 1.0)
    participation = np.clip(in_waves / live_share / max(ticks, 1e-9), 0.0, 1.0)
    sent = participation * ticks * live_share * np.maximum(session_len, 1.0)
    wave = Lockstep(members=np.arange(len(volume)), participation=participation,
                    tick_volume=ticks, spread_ms=int(spec.spread_s * 1000), wave=True,
                    calendar=calendar, live_share=live_share)
    return wave, volume - sent
