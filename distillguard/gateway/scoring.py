"""Online scoring: the batch scan's signal functions, run on micro-batches of requests.

``exchange_signals`` costs about 0.7 ms per call plus ~20 µs per row on small
batches (the lexicon's patterns compiled once per process, ``signals/regex.py``; 3.5
ms per call when Arrow compiled them on every call), so the gateway never calls it
per request: requests queue, and every ``interval`` seconds (or ``batch_max``
requests) one batch is scored, in a worker process by default so the event loop that
forwards requests never waits on it. The worker (``scoring_worker.py``) is a child process fed over its
stdin and stdout with length-prefixed JSON frames: no executor threads in the
gateway (a ``ProcessPoolExecutor`` held the event loop on its lock for ~1.6 ms
per batch, measured), and the worker ends by itself when its stdin closes, so it
never outlives a killed gateway. What comes back updates each account's window; the policy reads
the window, so it lags a request by at most one interval.

The worker also turns the signals into the window's counters (``WindowCounter``: the
technique hits, template reuse against the account's remembered text units, multi-turn)
and sums them per account and minute, so the event loop gets back a few small rows
per batch instead of every request's signals and template hashes; the template memory
lives in the worker with it (a replaced worker starts with an empty one).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import pyarrow as pa

from distillguard.errors import WorkerGone
from distillguard.gateway.account_window import MINUTE_MS, TemplateMemory, request_counts
from distillguard.logs.schema import MESSAGE_TYPE
from distillguard.signals import TECHNIQUES, exchange_signals, load_lexicon

__all__ = ["SCORING_SCHEMA", "ScoredRequest", "Scorer", "WindowCounter", "WindowRow", "score_rows",
           "write_frame"]

# What the window gets of a batch: account id, a time in the minute, summed counters.
WindowRow = tuple[str, int, dict[str, int]]

SCORING_SCHEMA = pa.schema([("messages", pa.list_(MESSAGE_TYPE)), ("system", pa.string()),
                            ("tools", pa.list_(pa.string())), ("has_image", pa.bool_())])


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
    out = {name: signals.column(name).to_pylist() for name in TECHNIQUES}
    out["capability"] = signals.column("capability").cast(pa.string()).to_pylist()
    for name in ("prior_turns", "text_hash", "units"):
        out[name] = signals.column(name).to_pylist()
    return out


class WindowCounter:
    """Request rows (account id, ms timestamp, messages, system, tools, has_image) to the
    window's counters, summed per account and minute (the finest the window keeps), in
    the order the requests came; remembers each account's text units to tell templated
    requests."""

    def __init__(self, template_memory: int = 2048) -> None:
        self.templates = TemplateMemory(template_memory)

    def count(self, rows: list[list[Any]]) -> list[WindowRow]:
        out = score_rows([row[2:] for row in rows])
        merged: dict[tuple[str, int], WindowRow] = {}
        for i, row in enumerate(rows):
            account, ts = row[0], row[1]
            scored = ScoredRequest(account, ts, {t: out[t][i] for t in TECHNIQUES},
                                   out["capability"][i], out["prior_turns"][i],
                                   out["text_hash"][i], out["units"][i])
            counts = request_counts(scored, self.templates.reuses(account, scored.units))
            entry = merged.get((account, ts // MINUTE_MS))
            if entry is None:
                merged[account, ts // MINUTE_MS] = (account, ts, counts)
            else:
                for name, n in counts.items():
                    entry[2][name] += n
        return list(merged.values())


def write_frame(stream: Any, payload: Any) -> None:
    """One frame: 4-byte big-endian length, then the JSON payload."""
    data = orjson.dumps(payload)
    stream.write(len(data).to_bytes(4, "big") + data)


class Scorer:
    """Queue requests; score them in batches; hand the window's counters (``WindowRow``s)
    to ``on_scored``."""

    def __init__(self, on_scored: Callable[[list[WindowRow]], Any], *,
                 interval: float = 0.05, batch_max: int = 256, worker: str = "process",
                 nice: int = 0, template_memory: int = 2048) -> None:
        self.on_scored = on_scored
        self.nice = nice
        self.interval = interval
        self.batch_max = batch_max
        self.worker = worker
        self.template_memory = template_memory
        self.scored = 0
        self.batches = 0
        self.lost = 0
        self._rows: list[list[Any]] = []
        self._counter = WindowCounter(template_memory) if worker != "process" else None
        self._proc: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    @property
    def pending(self) -> int:
        return len(self._rows)

    def submit(self, account_id: str, ts_ms: int, messages: list[dict[str, str]],
               system: str | None, tools: list[str] | None, has_image: bool) -> None:
        self._rows.append([account_id, ts_ms, messages, system, tools, has_image])
        if len(self._rows) >= self.batch_max:
            self._wake.set()

    async def _start_worker(self) -> None:
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "distillguard.gateway.scoring_worker", str(self.nice),
            str(self.template_memory), stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE)
        await self._remote([["", 0, [{"role": "user", "content": "warm up"}], None, None, False]],
                           remember=False)

    async def _remote(self, rows: list[list[Any]], *, remember: bool = True) -> list[WindowRow]:
        """Count ``rows`` in the worker (``remember``: their text units, for later requests
        of the same account); ``WorkerGone`` when it died."""
        proc = self._proc
        assert proc is not None and proc.stdin is not None and proc.stdout is not None
        try:
            write_frame(proc.stdin, {"rows": rows, "remember": remember})
            await proc.stdin.drain()
            size = int.from_bytes(await proc.stdout.readexactly(4), "big")
            return orjson.loads(await proc.stdout.readexactly(size))
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            raise WorkerGone(f"scoring worker {proc.pid} is gone") from exc

    async def start(self) -> None:
        if self.worker == "process":
            await self._start_worker()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
            self._wake.clear()
            try:
                await self.flush()
            except WorkerGone:
                # The worker died (killed, out of memory): that batch goes unscored (the
                # log has its exchanges); a new worker takes the next ones.
                self.lost += 1
                await self._stop_worker()
                await self._start_worker()

    async def _stop_worker(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), 5)
        except TimeoutError:
            proc.kill()
            await proc.wait()

    async def flush(self) -> int:
        """Score everything queued now; return how many requests were scored."""
        if not self._rows:
            return 0
        rows, self._rows = self._rows, []
        async with self._lock:  # one batch at a time through the worker's pipes
            if self._proc is not None:
                counted = await self._remote(rows)
            else:  # inline, or no worker running: score here
                self._counter = self._counter or WindowCounter(self.template_memory)
                counted = self._counter.count(rows)
        self.scored += len(rows)
        self.batches += 1
        result = self.on_scored(counted)
        if asyncio.iscoroutine(result):
            await result
        return len(rows)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        with contextlib.suppress(WorkerGone):
            await self.flush()
        await self._stop_worker()
