"""Online scoring reuses the batch scan's signal functions; the window follows the batch
scan's definitions."""

from __future__ import annotations

import asyncio

import pyarrow as pa
import pytest

from distillguard.gateway.account_window import AccountWindows, TemplateMemory, request_counts
from distillguard.gateway.scoring import (
    SCORING_SCHEMA,
    ScoredRequest,
    Scorer,
    WindowCounter,
    WindowRow,
    score_rows,
)
from distillguard.signals import exchange_signals

TECHNIQUES = ("cot_elicitation", "grading", "data_generation", "safe_rewrite", "tool_use")

ROWS = [
    ([{"role": "user", "content": "Think step by step and show your reasoning: 17 * 23?"}],
     None, None, False),
    ([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
      {"role": "user", "content": "Rate the following answer on a scale of 1 to 10."}],
     "You are a grader.", ["search"], False),
]


def test_score_rows_is_exchange_signals_of_the_same_requests() -> None:
    out = score_rows(ROWS)
    batch = pa.RecordBatch.from_pylist(
        [dict(zip(("messages", "system", "tools", "has_image"), r, strict=True)) for r in ROWS],
        schema=SCORING_SCHEMA)
    expected = exchange_signals(batch)
    for name in ("cot_elicitation", "grading", "tool_use", "prior_turns", "text_hash", "units"):
        assert out[name] == expected.column(name).to_pylist()
    assert out["prior_turns"] == [0, 2] and out["tool_use"][1] == 1.0


def test_scorer_batches_requests_and_hands_them_on() -> None:
    got: list[list[WindowRow]] = []

    async def run() -> None:
        scorer = Scorer(got.append, interval=0.01, worker="inline")
        await scorer.start()
        for i, row in enumerate(ROWS):
            scorer.submit(f"acct-{i}", 1_772_467_200_000, *row)
        await asyncio.sleep(0.1)
        await scorer.close()

    asyncio.run(run())
    rows = [row for batch in got for row in batch]
    assert [row[0] for row in rows] == ["acct-0", "acct-1"]
    assert [row[2]["cot_elicitation"] for row in rows] == [1, 0]
    assert len(got) == 1  # one call for both requests


def test_window_counter_sums_per_account_and_minute_what_each_request_adds() -> None:
    """Counting a batch at once (as the worker does) leaves the window as adding each
    request's counters one by one does."""
    t0 = 1_772_467_200_000
    plan = [("a", t0, 0), ("b", t0 + 10, 1), ("a", t0 + 20, 0), ("a", t0 + 61_000, 1),
            ("a", t0 + 62_000, 0)]
    rows = [[account, ts, *ROWS[i]] for account, ts, i in plan]
    counted = WindowCounter().count(rows)
    assert [(account, ts) for account, ts, _ in counted] == [("a", t0), ("b", t0 + 10),
                                                             ("a", t0 + 61_000)]
    assert [c["requests"] for _, _, c in counted] == [2, 1, 2]
    assert counted[0][2]["templated"] == 1  # the second "a" request repeats the first
    one_by_one, at_once = AccountWindows(), AccountWindows()
    memory = TemplateMemory()
    signals = score_rows([row[2:] for row in rows])
    for i, (account, ts, _) in enumerate(plan):
        s = ScoredRequest(account, ts, {t: signals[t][i] for t in TECHNIQUES}, "",
                          signals["prior_turns"][i], 0, signals["units"][i])
        one_by_one.add(account, ts, request_counts(s, memory.reuses(account, s.units)))
    for account, ts, counts in counted:
        at_once.add(account, ts, counts)
    for account in ("a", "b"):
        assert at_once.stats(account, t0 + 90_000) == one_by_one.stats(account, t0 + 90_000)


def _scored(account: str, ts: int, units: list[int], cot: float = 0.0,
            prior: int = 0) -> ScoredRequest:
    techniques = dict.fromkeys(("cot_elicitation", "grading", "data_generation", "safe_rewrite",
                                "tool_use"), 0.0)
    techniques["cot_elicitation"] = cot
    return ScoredRequest(account, ts, techniques, "general_chat", prior, 0, units)


def test_window_shares_velocity_and_hours() -> None:
    hour = 3_600_000
    t0 = 1_772_467_200_000
    memory = TemplateMemory()
    windows = AccountWindows(hours=24)
    plan = [(t0, [1, 2], 1.0, 0), (t0 + 1000, [2, 3], 1.0, 0), (t0 + 2000, [9], 0.5, 3),
            (t0 + 5 * hour, [1], 0.0, 0)]
    for ts, units, cot, prior in plan:
        s = _scored("a", ts, units, cot, prior)
        windows.add("a", ts, request_counts(s, memory.reuses("a", s.units)))
    stats = windows.stats("a", t0 + 5 * hour + 10)
    assert stats.requests == 4 and stats.hours_active == 2
    assert stats.shares["cot_elicitation"] == 0.5  # only strong matches (score 1) count
    assert stats.shares["templated"] == 0.5  # 2nd and 4th reuse units of earlier requests
    assert stats.shares["multi_turn"] == 0.25
    assert stats.requests_last_minute == 1
    later = windows.stats("a", t0 + 30 * hour)
    assert later.requests == 0  # out of the 24 h window


@pytest.mark.slow
def test_a_killed_scoring_worker_is_replaced() -> None:
    import os
    import signal

    got: list[WindowRow] = []

    async def run() -> int:
        scorer = Scorer(got.extend, interval=0.01, worker="process")
        await scorer.start()
        try:
            pid = scorer._proc.pid  # type: ignore[union-attr]
            os.kill(pid, signal.SIGKILL)
            await asyncio.sleep(0.2)
            scorer.submit("a", 1_772_467_200_000, *ROWS[0])  # lost with the dead worker
            deadline = asyncio.get_running_loop().time() + 20
            while scorer.lost == 0 and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.02)
            scorer.submit("b", 1_772_467_200_000, *ROWS[1])
            while not got and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.02)
            return scorer.lost
        finally:
            await scorer.close()

    assert asyncio.run(run()) == 1
    assert [row[0] for row in got] == ["b"]


@pytest.mark.slow
def test_the_scoring_worker_runs_below_the_proxy() -> None:
    import psutil

    async def run() -> tuple[int, int]:
        scorer = Scorer(lambda _: None, interval=0.01, worker="process", nice=7)
        await scorer.start()
        try:
            worker = psutil.Process(scorer._proc.pid)  # type: ignore[union-attr]
            return worker.nice(), psutil.Process().nice()
        finally:
            await scorer.close()

    worker_nice, own_nice = asyncio.run(run())
    assert worker_nice == min(19, own_nice + 7)
