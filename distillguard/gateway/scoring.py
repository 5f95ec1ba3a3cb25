"""Online scoring: the batch scan's signal functions, run on micro-batches of requests.

``exchange_signals`` costs about 3.5 ms per call whatever the batch size (most
of it the lexicon's regular expressions, compiled per call) and ~40 µs per row
on top, so the gateway never calls it per request: requests queue, and every
``interval`` seconds (or ``batch_max`` requests) one batch is scored, in a
worker process by default so the event loop that forwards requests never
waits on it. What comes back updates each account's window; the policy reads
the window, so it lags a request by at most one interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from distillguard.logs.schema import MESSAGE_TYPE
from distillguard.signals import exchange_signals, load_lexicon

__all__ = ["SCORING_SCHEMA", "ScoredRequest", "Scorer", "score_rows"]

SCORING_SCHEMA = pa.schema([("messages", pa.list_(MESSAGE_TYPE)), ("system", pa.string()),
                            ("tools", pa.list_(pa.string())), ("has_image", pa.bool_())])
_TECHNIQUES = ("cot_elicitation", "grading", "data_generation", "safe_rewrite", "tool_use")


@dataclass(slots=True)
class ScoredRequest:
    """One request's signals, as the window needs them."""

    account_id: str
    ts_ms: int
    techniques: dict[str, float]
    capability: str
    prior_turns: int
    text_hash: int
    units: list[int]


def score_rows(rows: list[tuple[Any, ...]]) -> dict[str, list[Any]]:
    """Signals of ``rows`` (messages, system, tools, has_image) as plain lists.

    Runs in the worker process: plain lists cross the process boundary cheaply.
    """
    columns = list(zip(*rows, strict=True)) if rows else [[], [], [], []]
    batch = pa.RecordBatch.from_arrays(
        [pa.array(list(c), f.type) for c, f in zip(columns, SCORING_SCHEMA, strict=True)],
        schema=SCORING_SCHEMA)
    signals = exchange_signals(batch, lexicon=load_lexicon())
    out = {name: signals.column(name).to_pylist() for name in _TECHNIQUES}
    out["capability"] = signals.column("capability").cast(pa.string()).to_pylist()
    for name in ("prior_turns", "text_hash", "units"):
        out[name] = signals.column(name).to_pylist()
    return out


def _exit_with_parent(parent: int) -> None:
    """Worker initializer: end this worker when the gateway is gone (even after ``kill -9``,
    which gives the pool no chance to stop its workers)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


def _warm() -> bool:
    score_rows([([{"role": "user", "content": "warm up"}], None, None, False)])
    return True


class Scorer:
    """Queue requests; score them in batches; hand the results to ``on_scored``."""

    def __init__(self, on_scored: Callable[[list[ScoredRequest]], Any], *,
                 interval: float = 0.05, batch_max: int = 256, worker: str = "process") -> None:
        self.on_scored = on_scored
        self.interval = interval
        self.batch_max = batch_max
        self.worker = worker
        self.scored = 0
        self.batches = 0
        self.lost = 0
        self._rows: list[tuple[Any, ...]] = []
        self._meta: list[tuple[str, int]] = []
        self._pool: ProcessPoolExecutor | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    @property
    def pending(self) -> int:
        return len(self._rows)

    def submit(self, account_id: str, ts_ms: int, messages: list[dict[str, str]],
               system: str | None, tools: list[str] | None, has_image: bool) -> None:
        self._rows.append((messages, system, tools, has_image))
        self._meta.append((account_id, ts_ms))
        if len(self._rows) >= self.batch_max:
            self._wake.set()

    async def _start_pool(self) -> None:
        # spawn: a fork of a process running an event loop and threads is unsafe
        self._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_exit_with_parent, initargs=(os.getpid(),))
        await asyncio.get_running_loop().run_in_executor(self._pool, _warm)

    async def start(self) -> None:
        if self.worker == "process":
            await self._start_pool()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
            self._wake.clear()
            try:
                await self.flush()
            except BrokenProcessPool:
                # The worker died (killed, out of memory): that batch goes unscored (the
                # log has its exchanges); a new worker takes the next ones.
                self.lost += 1
                if self._pool is not None:
                    self._pool.shutdown(wait=False, cancel_futures=True)
                await self._start_pool()

    async def flush(self) -> int:
        """Score everything queued now; return how many requests were scored."""
        if not self._rows:
            return 0
        rows, meta = self._rows, self._meta
        self._rows, self._meta = [], []
        if self._pool is not None:
            out = await asyncio.get_running_loop().run_in_executor(self._pool, score_rows, rows)
        else:
            out = score_rows(rows)
        scored = [ScoredRequest(account, ts, {t: out[t][i] for t in _TECHNIQUES},
                                out["capability"][i], out["prior_turns"][i], out["text_hash"][i],
                                out["units"][i])
                  for i, (account, ts) in enumerate(meta)]
        self.scored += len(scored)
        self.batches += 1
        result = self.on_scored(scored)
        if asyncio.iscoroutine(result):
            await result
        return len(scored)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self.flush()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
