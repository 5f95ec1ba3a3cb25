"""Turn a slice's events into exchange-log record batches (the spec's 25 fields).

Per session: the model (old, small or new, by the account's adoption of the
new model), the address (per request for rotating proxies), the API key and,
for browser clients, a conversation id. Per request: a random request id,
the status (429 beyond the tier's per-minute limit, a few 5xx), token counts
(about four characters a token) and the reference answer where the corpus
has one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from distillguard.logs.schema import SPEC_FIELDS, TS_TYPE
from distillguard.sim.attack_content import is_attack_pool
from distillguard.sim.content import ContentStore
from distillguard.sim.identity import hex_ids
from distillguard.sim.paraphrase import Paraphraser
from distillguard.sim.population import TIERS, Population
from distillguard.sim.sessions import Events
from distillguard.sim.timing import HOUR_MS, adoption_share

__all__ = ["RATE_LIMITS", "WRITE_SCHEMA", "Rows", "plan_rows", "rows_batch"]

WRITE_SCHEMA = pa.schema(SPEC_FIELDS)
# requests per minute per account, by tier (beyond: 429)
RATE_LIMITS = {"free": 5, "pro": 50, "team": 200, "enterprise": 2000, "startup": 300,
               "edu": 30, "research": 300}
_LIMITS = np.array([RATE_LIMITS[t] for t in TIERS])
_TIER_NAMES = pa.array(TIERS)
_SERVER_ERRORS = np.array([500, 503, 529])
SERVER_ERROR_SHARE = 0.003


def _models(pop: Population, ev: Events, start_ms: int, rng: np.random.Generator) -> np.ndarray:
    """Per session: 0 the old model, 1 the small one, 2 the new one."""
    a = ev.s_acct
    t_h = (ev.s_start - start_ms) / HOUR_MS
    new = rng.random(len(a)) < adoption_share(t_h, pop.adopt_at[a], pop.adopt_share[a],
                                              pop.adopt_ramp[a])
    small = ~new & (rng.random(len(a)) < pop.small_share[a])
    return np.where(new, 2, np.where(small, 1, 0)).astype(np.int8)


def _status(pop: Population, acct: np.ndarray, ts: np.ndarray,
            rng: np.random.Generator) -> np.ndarray:
    minute = ts // 60_000
    order = np.lexsort((ts, minute, acct))
    key_a, key_m = acct[order], minute[order]
    new_group = np.ones(len(order), bool)
    new_group[1:] = (key_a[1:] != key_a[:-1]) | (key_m[1:] != key_m[:-1])
    starts = np.maximum.accumulate(np.where(new_group, np.arange(len(order)), 0))
    rank = np.empty(len(order), np.int64)
    rank[order] = np.arange(len(order)) - starts
    status = np.full(len(acct), 200, np.int64)
    status[rank >= _LIMITS[pop.tier[acct]]] = 429
    broken = rng.random(len(acct)) < SERVER_ERROR_SHARE
    status[broken] = rng.choice(_SERVER_ERRORS, int(broken.sum()))
    return status


def _tokens(store: ContentStore, pop: Population, ev: Events, ok: np.ndarray,
            rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    noise = rng.uniform(0.9, 1.1, (2, len(ev)))
    inp = np.ceil(store.in_chars[ev.entry] / 4 * noise[0]).astype(np.int64) + 8
    typical = np.array([store.pools[p].out_tokens for p, _ in pop.stream_keys])[ev.stream]
    drawn = typical * np.exp(0.5 * rng.standard_normal(len(ev)))
    known = store.out_chars[ev.entry]
    out = np.where(known >= 0, known / 4 * noise[1], drawn)
    return inp, np.where(ok, np.ceil(np.maximum(out, 1)), 0).astype(np.int64)


def _session_pick(rng: np.random.Generator, start: np.ndarray, length: np.ndarray) -> np.ndarray:
    return start + (rng.random(len(start)) * length).astype(np.int64)


@dataclass(frozen=True)
class Rows:
    """A slice's exchanges as integers, every random draw made once for the whole slice
    (so a conversation keeps its model and id across row groups); text comes later."""

    ts: np.ndarray
    entry: np.ndarray
    acct: np.ndarray
    ip: np.ndarray
    key: np.ndarray
    conv: np.ndarray          # index into ``conv_ids``, -1 none
    model: np.ndarray
    status: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    has_image: np.ndarray
    conv_ids: pa.StringArray
    session: np.ndarray       # the session each row belongs to (within the slice)
    paraphrase: np.ndarray    # rows whose text the ``paraphrase`` knob rewords
    seed: int                 # the slice's paraphrasing seed

    def __len__(self) -> int:
        return len(self.ts)


def plan_rows(pop: Population, store: ContentStore, ev: Events, start_ms: int,
              rng: np.random.Generator, *, paraphrase: bool = False) -> Rows:
    n = len(ev)
    acct = ev.acct
    s_acct = ev.s_acct
    ip = _session_pick(rng, pop.ip_start[s_acct], pop.ip_len[s_acct])[ev.session]
    rotate = pop.ip_rotates[acct]
    ip[rotate] = _session_pick(rng, pop.ip_start[acct[rotate]], pop.ip_len[acct[rotate]])
    key = _session_pick(rng, pop.key_start[s_acct], pop.key_len[s_acct])[ev.session]
    browser_sessions = pop.clients.browser[pop.client[s_acct]]
    conv_ids = hex_ids(rng, int(browser_sessions.sum()), "conversation")
    conv = np.where(browser_sessions, np.cumsum(browser_sessions) - 1, -1)[ev.session]
    status = _status(pop, acct, ev.ts, rng)
    input_tokens, output_tokens = _tokens(store, pop, ev, status == 200, rng)
    pool_image = np.array([store.pools[p].image for p, _ in pop.stream_keys])[ev.stream]
    single = store.msg_len[ev.entry] == 1
    has_image = pool_image | (single & (rng.random(n) < pop.image_share[acct]))
    reworded = np.array([is_attack_pool(p) for p, _ in pop.stream_keys], bool)[ev.stream] \
        if paraphrase else np.zeros(n, bool)
    return Rows(ts=ev.ts, entry=ev.entry, acct=acct, ip=ip, key=key, conv=conv,
                model=_models(pop, ev, start_ms, rng)[ev.session], status=status,
                input_tokens=input_tokens, output_tokens=output_tokens, has_image=has_image,
                conv_ids=conv_ids, session=ev.session, paraphrase=reworded,
                seed=int(rng.integers(0, 2**62)))


def _seed(base: int, session: int, message: int) -> int:
    """One request's paraphrasing seed: the same for a message in every turn of a session."""
    return (base * 0x9E3779B97F4A7C15 + int(session) * 0xC2B2AE3D27D4EB4F + int(message)) \
        & 0x7FFFFFFFFFFFFFFF


def _reworded(texts: list[str], rows_of: np.ndarray, keys: np.ndarray, rows: Rows,
              session: np.ndarray, paraphraser: Paraphraser, *, system: bool) -> list[str]:
    return [paraphraser.paraphrase(t, _seed(rows.seed, session[r], -1 - k if system else k),
                                   key=int(k), system=system)
            for t, r, k in zip(texts, rows_of, keys, strict=True)]


def _texts(store: ContentStore, rows: Rows, entry: np.ndarray, lo: int, hi: int,
           paraphraser: Paraphraser | None) -> tuple[pa.Array, pa.Array, np.ndarray]:
    """The ``messages`` and ``system`` columns of ``rows[lo:hi]``, pipeline requests reworded
    (user turns and system prompts), and the characters each row gained by it."""
    n = hi - lo
    todo = rows.paraphrase[lo:hi]
    system = store.system(entry)
    gained = np.zeros(n, np.int64)
    if paraphraser is None or not todo.any():
        return store.messages(entry), system, gained
    session = rows.session[lo:hi]
    offsets, flat = store.message_index(entry)
    row = np.repeat(np.arange(n), np.diff(offsets))
    contents = store.contents.take(flat)
    pick = np.flatnonzero(todo[row] & (store.roles[flat] == 0))
    if len(pick):
        old = contents.take(pa.array(pick)).to_pylist()
        new = _reworded(old, row[pick], flat[pick], rows, session, paraphraser, system=False)
        np.add.at(gained, row[pick], [len(b) - len(a) for a, b in zip(old, new, strict=True)])
        mask = np.zeros(len(flat), bool)
        mask[pick] = True
        contents = pc.replace_with_mask(contents, pa.array(mask), pa.array(new, pa.string()))
    sys_idx = store.system_idx[entry]
    with_system = np.flatnonzero(todo & (sys_idx >= 0))
    if len(with_system):
        old = store.systems.take(pa.array(sys_idx[with_system])).to_pylist()
        new = _reworded(old, with_system, sys_idx[with_system], rows, session, paraphraser,
                        system=True)
        gained[with_system] += [len(b) - len(a) for a, b in zip(old, new, strict=True)]
        mask = np.zeros(n, bool)
        mask[with_system] = True
        system = pc.replace_with_mask(system, pa.array(mask), pa.array(new, pa.string()))
    return store.messages(entry, contents), system, gained


def rows_batch(pop: Population, store: ContentStore, rows: Rows, models: dict[str, str],
               lo: int, hi: int, rng: np.random.Generator,
               paraphraser: Paraphraser | None = None) -> pa.RecordBatch:
    """The record batch of ``rows[lo:hi]``: the only place text is materialized."""
    n = hi - lo
    acct, entry, ip = rows.acct[lo:hi], rows.entry[lo:hi], rows.ip[lo:hi]
    messages, system, gained = _texts(store, rows, entry, lo, hi, paraphraser)
    input_tokens = np.maximum(rows.input_tokens[lo:hi] + np.round(gained / 4).astype(np.int64),
                              1)
    status, conv = rows.status[lo:hi], rows.conv[lo:hi]
    client = pop.client[acct]
    acct_idx = pa.array(acct)
    names = pa.array([models["old"], models["small"], models["new"]])
    columns = {
        "request_id": hex_ids(rng, n, "request"),
        "ts": pa.array(rows.ts[lo:hi], TS_TYPE),
        "account_id": pop.account_id.take(acct_idx),
        "model": names.take(pa.array(rows.model[lo:hi])),
        "messages": messages,
        "system": system,
        "org_id": pop.org_id.take(acct_idx),
        "api_key_id": pop.keys.take(pa.array(rows.key[lo:hi])),
        "account_created": pa.array(pop.created_ms[acct], TS_TYPE),
        "account_tier": _TIER_NAMES.take(pa.array(pop.tier[acct])),
        "verified": pa.array(pop.verified[acct]),
        "payment_fingerprint": pop.payment.take(acct_idx),
        "ip": pop.ips.ip.take(pa.array(ip)),
        "asn": pa.array(pop.ips.asn[ip]),
        "country": pop.ips.country.take(pa.array(ip)),
        "user_agent": pop.clients.user_agent.take(pa.array(client)),
        "client_fingerprint": pop.clients.fingerprint.take(pa.array(client)),
        "tools": store.tools(entry),
        "has_image": pa.array(rows.has_image[lo:hi]),
        "conversation_id": rows.conv_ids.take(pa.array(np.maximum(conv, 0), mask=conv < 0))
        if len(rows.conv_ids) else pa.nulls(n, pa.string()),
        "response": store.response(entry, status == 200),
        "reasoning": pa.nulls(n, pa.string()),
        "input_tokens": pa.array(input_tokens),
        "output_tokens": pa.array(rows.output_tokens[lo:hi]),
        "status": pa.array(status),
    }
    return pa.RecordBatch.from_arrays([columns[f.name] for f in WRITE_SCHEMA],
                                      schema=WRITE_SCHEMA)
