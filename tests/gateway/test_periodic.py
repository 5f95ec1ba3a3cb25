"""A timer whose call raises once keeps calling: one bad tick must not stop later flushes."""

from __future__ import annotations

import asyncio
import logging

import pytest

from distillguard.gateway.periodic import Periodic


@pytest.mark.parametrize("coroutine", [False, True])
def test_a_call_that_raises_is_logged_and_the_timer_goes_on(
        coroutine: bool, caplog: pytest.LogCaptureFixture) -> None:
    calls: list[int] = []

    def tick() -> None:
        calls.append(len(calls))
        if len(calls) == 1:
            raise ValueError("a record that does not encode")

    async def tick_async() -> None:
        tick()

    async def run() -> None:
        timer = Periodic(0.01, tick_async if coroutine else tick)
        timer.start()
        for _ in range(500):
            if len(calls) >= 3:
                break
            await asyncio.sleep(0.01)
        await timer.stop()

    with caplog.at_level(logging.ERROR, logger="distillguard.gateway"):
        asyncio.run(run())
    assert len(calls) >= 3
    assert "a record that does not encode" in caplog.text
