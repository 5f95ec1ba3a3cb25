"""``simulate``: build the world once (``world``), then write the window in parts.

Each part is one day of time slices (``world.plan_slices``). Every slice draws
from its own generator, seeded by (seed, slice), so the output is the same
whatever the number of workers; workers are forked processes that share the
frozen content store and population and each write their own part files. A
slice is planned as integers, and its text is materialized and written
``ROW_GROUP_ROWS`` rows at a time, so memory stays bounded at any scale.
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

from distillguard.sim.assemble import plan_rows, rows_batch
from distillguard.sim.population import Population
from distillguard.sim.sessions import slice_events
from distillguard.sim.timing import hour_of_week_offset, weekly_shapes
from distillguard.sim.world import SimOptions, World, build_world
from distillguard.sim.writer import PartWriter, write_json, write_labels, write_releases

__all__ = ["SimOptions", "SimReport", "simulate"]

ROW_GROUP_ROWS = 32_000       # text is materialized at most this many rows at a time
SHOW_AFTER_SECONDS = 2.0


@dataclass
class SimReport:
    out: Path
    scenario: str
    scale: float
    seed: int
    evasion: list[str]
    split: str
    attack_corpora: list[str]
    paraphrase_strength: float | None = None
    exchanges: int = 0
    accounts: int = 0
    seconds: float = 0.0
    by_kind: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The manifest: everything but where and how fast (so it is the same for a seed)."""
        return {k: v for k, v in self.__dict__.items() if k not in ("out", "seconds")}


_WORLD: World | None = None
_PROGRESS: Any = None


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
            rows = plan_rows(pop, world.store, events, world.scenario.start_ms, rng,
                             paraphrase=world.paraphraser is not None)
            groups = max(1, -(-len(rows) // ROW_GROUP_ROWS))
            bounds = np.linspace(0, len(rows), groups + 1).astype(int)
            for lo, hi in itertools.pairwise(bounds):
                writer.write(rows_batch(pop, world.store, rows, world.scenario.models, lo, hi,
                                        rng, world.paraphraser))
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


def _run_parts(world: World, bar: tqdm) -> tuple[np.ndarray, int]:
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
                       attack_corpora=list(opts.attack_corpora or ()),
                       paraphrase_strength=opts.paraphrase_strength, exchanges=rows,
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
