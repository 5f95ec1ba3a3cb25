"""Legitimate accounts: people chatting, apps, eval teams, campuses, companies.

Groups are the unit a real customer comes in: an app (one or two accounts
sharing an org, a payment method and a few cloud IPs), an eval team, a campus
(students behind one NAT), a company (staff behind one egress IP, sharing an
org and a payment method). A chat user is a group of one.
"""

from __future__ import annotations

import numpy as np

from distillguard.sim.accounts import (
    BuildContext,
    adoption,
    available,
    created,
    day_masks,
    job_calendar,
    lognormal,
    profile_index,
    shared_streams,
    stream_matrix,
    tiers,
)
from distillguard.sim.legit_content import app_pool
from distillguard.sim.population import TIERS, AccountBlock
from distillguard.sim.scenario import Archetype
from distillguard.sim.templates import LegitTemplates

__all__ = ["legit_block"]

_FREE = TIERS.index("free")


def _network(kind: str, ctx: BuildContext, local: np.ndarray, n_groups: int,
             country: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Address ranges per account, and each account's country (a hosted network's)."""
    rng = ctx.rng
    if kind == "residential":
        per = 1 + (rng.random(len(local)) < 0.35) + (rng.random(len(local)) < 0.1)
        start, length = ctx.networks.own_residential(country, per)
        return start, length, country
    hosted = {"cloud": "cloud", "campus": "campus", "corporate": "business"}
    starts, lens, countries = (np.zeros(n_groups, np.int64) for _ in range(3))
    for g in range(n_groups):
        net = hosted.get(kind) or ("campus" if rng.random() < 0.5 else "cloud")
        size = int(rng.integers(2, 7)) if net == "cloud" else int(rng.integers(1, 3))
        starts[g], lens[g], countries[g] = ctx.networks.hosted_block(net, size)
    return starts[local], lens[local], countries[local]


def _clients(kind: str, ctx: BuildContext, local: np.ndarray, n_groups: int) -> np.ndarray:
    if kind == "consumer":
        return ctx.clients.consumer(len(local))
    per_group = ctx.clients.sdk(n_groups)
    if kind == "app":
        for g in np.flatnonzero(ctx.rng.random(n_groups) < 0.3):
            per_group[g] = ctx.clients.custom()
    return per_group[local]


def _app_streams(ctx: BuildContext, templates: LegitTemplates, local: np.ndarray,
                 n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    names = list(templates.apps)
    rows = []
    for _ in range(n_groups):
        t = templates.apps[names[int(ctx.rng.integers(len(names)))]]
        product = templates.products[int(ctx.rng.integers(len(templates.products)))]
        has_product = bool(t.system and "{product}" in t.system)
        rows.append([(app_pool(t.name, product if has_product else None), 0, 1.0)])
    ids, weights = stream_matrix(ctx, rows)
    return ids[local], weights[local]


def legit_block(spec: Archetype, kind: int, scale: float, ctx: BuildContext,
                templates: LegitTemplates) -> AccountBlock:
    rng = ctx.rng
    n_groups = max(spec.min_groups, round(spec.groups * scale))
    members = np.maximum(1, np.rint(lognormal(rng, *spec.members, n_groups))).astype(np.int64)
    local = np.repeat(np.arange(n_groups), members)
    n = len(local)
    group = ctx.groups(n_groups)[local]
    solo = spec.members == (1.0, 0.0)
    home = ctx.networks.draw_countries(n if solo else n_groups)
    ip_start, ip_len, country = _network(spec.network, ctx, local, n_groups,
                                         home if solo else home[local])
    tz = ctx.networks.draw_tz(country)
    if not solo:  # a group shares one time zone
        first = np.concatenate([[0], np.cumsum(members)[:-1]])
        tz = tz[first][local]
    grouped = spec.org == "group"
    tier = tiers(rng, spec.tiers, n_groups)[local] if grouped else tiers(rng, spec.tiers, n)
    org_key = ctx.keys(n_groups)[local] if grouped else ctx.keys(n)
    if spec.payment == "group":
        has = rng.random(n_groups) < spec.payment_share
        payment = np.where(has, ctx.keys(n_groups), -1)[local]
    else:
        payment = np.where(tier == _FREE, -1, ctx.keys(n))
    hours = ctx.hours
    active_from = np.where(rng.random(n) < spec.new_accounts / 3,
                           rng.integers(0, hours - 24, n), 0)
    per_day = lognormal(rng, *spec.per_day, n)
    volume = per_day * (hours - active_from) / 24
    if spec.forwarded_share:   # per_day is what their own account sends
        volume = volume / (1 - spec.forwarded_share)
    if spec.schedule:   # each group (a team) runs its jobs on its own days and hours
        calendar = np.array([ctx.calendar(job_calendar(ctx, spec.schedule))
                             for _ in range(n_groups)])[local]
    else:
        calendar = np.full(n, ctx.calendar())
    adopt_at, adopt_share, ramp = adoption(ctx, spec.adoption, n,
                                           group if not solo else None)
    if spec.one_model:
        small = (rng.random(n_groups) < spec.small_model).astype(float)[local]
    else:
        small = np.clip(spec.small_model * rng.uniform(0, 2, n), 0, 1)
    if spec.streams[0].pool == "app":
        streams, weights = _app_streams(ctx, templates, local, n_groups)
    else:   # judge pools exist for the pipelines of the split only
        chosen = available(ctx, spec.streams) or list(spec.streams)
        streams, weights = shared_streams(ctx, [(s.pool, s.run, s.weight) for s in chosen], n)
    return AccountBlock(
        kind=kind, group=group, org_key=org_key, payment_key=payment,
        created_ms=created(ctx, spec.new_accounts, active_from, spec.creation, group=group),
        tier=tier,
        verified=rng.random(n) < spec.verified, tz=tz,
        profile=np.full(n, profile_index(spec), np.int8),
        day_mask=day_masks(ctx, spec.active_days, n), active_from=active_from.astype(np.int64),
        active_to=np.full(n, hours, np.int64), volume=volume, adopt_at=adopt_at,
        adopt_share=adopt_share, adopt_ramp=ramp, small_share=small,
        image_share=np.full(n, spec.image_share), ip_start=ip_start, ip_len=ip_len,
        ip_rotates=np.zeros(n, bool), client=_clients(spec.client, ctx, local, n_groups),
        n_keys=1 + (rng.random(n) < 0.3) + (rng.random(n) < 0.1 * (spec.client == "app")),
        streams=streams, weights=weights, calendar=calendar, forward_to=spec.forwarded_by,
        forward_share=spec.forwarded_share, personal=spec.personal)
