"""Call a function every few seconds on the running event loop, until stopped.

The function may be a coroutine function: its result is awaited before the next
wait starts. A call that raises is logged and the timer goes on: one bad tick (a record
that does not encode, an error from a library) must not stop the flushes and reloads
that later ticks would have done.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable

__all__ = ["Periodic"]

_log = logging.getLogger("distillguard.gateway")


class Periodic:
    def __init__(self, seconds: float, call: Callable[[], object]) -> None:
        self.seconds = seconds
        self.call = call
        self._task: asyncio.Task[None] | None = None

    async def _forever(self) -> None:
        while True:
            await asyncio.sleep(self.seconds)
            try:
                result = self.call()
                if inspect.isawaitable(result):
                    await result
            except Exception:
                _log.exception("%s failed; trying again in %g s",
                               getattr(self.call, "__qualname__", self.call), self.seconds)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._forever())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
