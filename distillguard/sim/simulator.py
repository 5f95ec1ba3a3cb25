"""``simulate``: build the content and the population once, then write the window in parts.

The window is cut into time slices (1 to 24 hours, so that a slice holds about
``TARGET_SLICE_ROWS`` exchanges) and the slices into one part per day. Every
slice draws from its own generator, seeded by (seed, slice), so the output is
the same whatever the number of workers; workers are forked processes that
share the frozen content store and population and each write their own part
files. A slice is planned as integers, and its text is materialized and
written ``ROW_GROUP_ROWS`` rows at a time, so memory stays bounded at any scale.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import itertools
import multiprocessing as mp
import queue
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from tqdm import tqdm

from distillguard.errors import InputError
from distillguard.sim.accounts import BuildContext
from distillguard.sim.assemble import plan_rows, rows_batch
from distillguard.sim.attack_content import add_attack_pools
from distillguard.sim.campaigns import campaign_block
from distillguard.sim.clients import Clients
from distillguard.sim.content import ContentStore, StoreBuilder
from distillguard.sim.corpora import find_corpora_dir
from distillguard.sim.legit_content import add_legit_pools, load_legit_corpora
from distillguard.sim.legit_population import legit_block
from distillguard.sim.networks import Networks
from distillguard.sim.population import AccountBlock, Lockstep, Population, StreamTable, assemble_population
from distillguard.sim.scenario import DEFAULT_SCENARIO, SPLITS, Scenario, load_scenario
from distillguard.sim.sessions import slice_events
from distillguard.sim.templates import load_templates
from distillguard.sim.timing import HOUR_MS, hour_of_week_offset, weekly_shapes
from distillguard.sim.writer import FORMATS, PartWriter, write_json, write_labels, write_releases

__all__ = ["SimOptions", "SimReport", "simulate"]

TARGET_SLICE_ROWS = 150_000
ROW_GROUP_ROWS = 32_000       # text is materialized at most this many rows at a time
SLICE_HOURS = (24, 12, 6, 4, 2, 1)
STYLES = 16
SHOW_AFTER_SECONDS = 2.0


@dataclass(frozen=True)
class SimOptions:
    out: Path
    scenario: str = DEFAULT_SCENARIO
    scale: float = 0.01
    seed: int = 1
    evasion: frozenset[str] | None = None     # None: the scenario's default
    split: str = "all"
    attack_corpora: tuple[str, ...] | None = None
    fmt: str = "parquet"
    workers: int = 2
    corpora: Path | None = None


@dataclass
class SimReport:
    out: Path
    scenario: str
    scale: float
    seed: int
    evasion: list[str]
    split: str
    attack_corpora: list[str]
    exchanges: int = 0
    accounts: int = 0
    seconds: float = 0.0
    by_kind: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The manifest: everything but where and how fast (so it is the same for a seed)."""
        return {k: v for k, v in self.__dict__.items() if k not in ("out", "seconds")}


@dataclass
class _World:
    scenario: Scenario
    store: ContentStore
    population: Population
    options: SimOptions
    slices: list[np.ndarray]
    parts: list[list[int]]


_WORLD: _World | None = None
_PROGRESS: Any = None


def _check(options: SimOptions) -> None:
    if not options.scale > 0:
        msg = f"--scale must be greater than 0, got {options.scale}"
        raise InputError(msg)
    if options.split not in SPLITS:
        msg = f"--split must be one of {', '.join(SPLITS)}, got {options.split!r}"
        raise InputError(msg)
    if options.fmt not in FORMATS:
        msg = f"--format must be one of {', '.join(FORMATS)}, got {options.fmt!r}"
        raise InputError(msg)
    if options.workers < 1:
        msg = f"--workers must be at least 1, got {options.workers}"
        raise InputError(msg)


def attack_corpora_for(scenario: Scenario, split: str,
                       explicit: tuple[str, ...] | None) -> list[str]:
    if explicit:
        return list(dict.fromkeys(explicit))
    if split == "all":
        return list(dict.fromkeys(scenario.attack_corpora["train"]
                                  + scenario.attack_corpora["test"]))
    return list(scenario.attack_corpora[split])


def build_world(options: SimOptions) -> _World:
    """Load the scenario and corpora, build the content store and the population."""
    _check(options)
    scenario = load_scenario(options.scenario)
    evasion = scenario.evasion if options.evasion is None else options.evasion
    corpora_dir = find_corpora_dir(options.corpora)
    rng = np.random.default_rng([options.seed, 1])
    templates = load_templates()
    builder = StoreBuilder()
    add_legit_pools(builder, load_legit_corpora(corpora_dir, options.split), templates, rng)
    names = attack_corpora_for(scenario, options.split, options.attack_corpora)
    styles = STYLES if "templates" in evasion else 0
    if scenario.campaigns:
        add_attack_pools(builder, corpora_dir, names, styles=styles, rng=rng)
    store = builder.build()
    del builder

    how0 = hour_of_week_offset(scenario.start_ms)
    ctx = BuildContext(rng=np.random.default_rng([options.seed, 2]),
                       networks=Networks(np.random.default_rng([options.seed, 3])),
                       clients=Clients(np.random.default_rng([options.seed, 4])),
                       streams=StreamTable(), store=store, start_ms=scenario.start_ms,
                       days=scenario.days,
                       release_hour=(scenario.release_ms - scenario.start_ms) / HOUR_MS)
    blocks: list[AccountBlock] = []
    lockstep: list[list[Lockstep]] = []
    kinds: list[str] = []
    actors: list[str | None] = []
    for spec in scenario.legit:
        blocks.append(legit_block(spec, len(kinds), options.scale, ctx, templates))
        lockstep.append([])
        kinds.append(spec.name)
        actors.append(None)
    for camp in scenario.campaigns:
        block, groups = campaign_block(camp, len(kinds), options.scale, evasion,
                                       scenario.evasion_mix, styles, ctx)
        blocks.append(block)
        lockstep.append(groups)
        kinds.append(camp.name)
        actors.append(camp.name)
    population = assemble_population(blocks, lockstep, kinds, actors, ctx.streams, store,
                                     ctx.networks.table(), ctx.clients.table(), how0,
                                     np.random.default_rng([options.seed, 5]))
    slices, parts = plan_slices(scenario.days, float(population.expected.sum()))
    options = SimOptions(**{**options.__dict__, "evasion": evasion,
                            "attack_corpora": tuple(names) if scenario.campaigns else ()})
    return _World(scenario, store, population, options, slices, parts)


def plan_slices(days: int, expected_rows: float) -> tuple[list[np.ndarray], list[list[int]]]:
    """Window hours per slice, and slice indices per part (one part per day)."""
    per_hour = expected_rows / (days * 24)
    hours = next((h for h in SLICE_HOURS if per_hour * h * 1.5 <= TARGET_SLICE_ROWS), 1)
    slices = [np.arange(s, s + hours) for s in range(0, days * 24, hours)]
    per_day = 24 // hours
    parts = [list(range(d * per_day, (d + 1) * per_day)) for d in range(days)]
    return slices, parts


def _run_part(part: int) -> tuple[int, np.ndarray, int]:
    """Write one part file; returns (part, exchanges per account, rows)."""
    world = _WORLD
    assert world is not None
    pop, opts = world.population, world.options
    shapes = weekly_shapes()
    how0 = hour_of_week_offset(world.scenario.start_ms)
    counts = np.zeros(pop.n, np.int64)
    total = 0
    with PartWriter(opts.out, part, opts.fmt) as writer:
        for s in world.parts[part]:
            rng = np.random.default_rng([opts.seed, 1000, s])
            events = slice_events(pop, world.store, shapes, how0, world.scenario.start_ms,
                                  world.slices[s], rng)
            rows = plan_rows(pop, world.store, events, world.scenario.start_ms, rng)
            groups = max(1, -(-len(rows) // ROW_GROUP_ROWS))
            bounds = np.linspace(0, len(rows), groups + 1).astype(int)
            for lo, hi in itertools.pairwise(bounds):
                writer.write(rows_batch(pop, world.store, rows, world.scenario.models, lo, hi,
                                        rng))
                pa.default_memory_pool().release_unused()
            _release_memory()
            counts += np.bincount(events.acct, minlength=pop.n)
            total += len(rows)
            if _PROGRESS is not None:
                _PROGRESS.put(len(rows))
    return part, counts, total


def _init_worker(progress: Any) -> None:
    global _PROGRESS
    _PROGRESS = progress


def _run_parts(world: _World, bar: tqdm) -> tuple[np.ndarray, int]:
    global _WORLD
    _WORLD = world
    n_parts = len(world.parts)
    counts = np.zeros(world.population.n, np.int64)
    rows = 0
    workers = min(world.options.workers, n_parts)
    if workers == 1:
        for part in range(n_parts):
            _, c, r = _run_part(part)
            counts += c
            rows += r
            bar.update(r)
        return counts, rows
    ctx = mp.get_context("fork")
    progress = ctx.Queue()
    with ctx.Pool(workers, initializer=_init_worker, initargs=(progress,)) as pool:
        pending = pool.map_async(_run_part, range(n_parts), chunksize=1)
        while not pending.ready():
            _drain(progress, bar.update, timeout=0.2)
        results = pending.get()
        _drain(progress, bar.update, timeout=0.0)
    for _, c, r in results:
        counts += c
        rows += r
    return counts, rows


def _drain(progress: Any, update: Callable[[int], Any], timeout: float) -> None:
    try:
        update(progress.get(timeout=timeout))
        while True:
            update(progress.get_nowait())
    except queue.Empty:
        return


def _release_memory() -> None:
    """Hand freed memory back to the OS: after corpus loading (before workers fork,
    or every worker would carry those pages) and after each slice. Python and Arrow
    have freed it already, but glibc and Arrow's allocator keep the pages."""
    pa.default_memory_pool().release_unused()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def simulate(options: SimOptions, *, show_progress: bool = True) -> SimReport:
    """Write a simulated exchange log, its releases and its ground truth to ``options.out``."""
    t0 = time.perf_counter()
    world = build_world(options)
    gc.collect()
    _release_memory()
    opts = world.options
    out = opts.out
    for folder in ("exchanges", "exchanges-jsonl"):
        if (out / folder).exists():
            shutil.rmtree(out / folder)
    out.mkdir(parents=True, exist_ok=True)
    pop = world.population
    bar = tqdm(total=int(pop.expected.sum()), desc="simulate", unit="ex", unit_scale=True,
               file=sys.stderr, delay=SHOW_AFTER_SECONDS, leave=False,
               disable=None if show_progress else True)
    with bar:
        counts, rows = _run_parts(world, bar)
    actors = [pop.actors[k] for k in pop.kind]
    write_releases(out / "releases.json", world.scenario.releases)
    accounts = write_labels(out / "labels.jsonl", pop.account_id, actors,
                            [pop.kinds[k] for k in pop.kind], counts > 0)
    report = SimReport(out=out, scenario=world.scenario.name, scale=opts.scale, seed=opts.seed,
                       evasion=sorted(opts.evasion or ()), split=opts.split,
                       attack_corpora=list(opts.attack_corpora or ()), exchanges=rows,
                       accounts=accounts, seconds=round(time.perf_counter() - t0, 2),
                       by_kind=_by_kind(pop, counts))
    write_json(out / "simulation.json", report.as_dict())
    return report


def _by_kind(pop: Population, counts: np.ndarray) -> list[dict[str, Any]]:
    rows = []
    for k, name in enumerate(pop.kinds):
        sel = (pop.kind == k) & (counts > 0)
        rows.append({"kind": name, "actor": pop.actors[k], "accounts": int(sel.sum()),
                     "exchanges": int(counts[pop.kind == k].sum())})
    return rows
