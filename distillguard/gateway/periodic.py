"""Call a function every few seconds on the running event loop, until stopped.

The function may be a coroutine function: its result is awaited before the next
wait starts.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable

__all__ = ["Periodic"]


class Periodic:
    def __init__(self, seconds: float, call: Callable[[], object]) -> None:
        self.seconds = seconds
        self.call = call
        self._task: asyncio.Task[None] | None = None

    async def _forever(self) -> None:
        while True:
            await asyncio.sleep(self.seconds)
            result = self.call()
            if inspect.isawaitable(result):
                await result

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._forever())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
