"""Progress bars on stderr, shown only for work that lasts more than a moment."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from tqdm import tqdm

__all__ = ["QueryProgress", "byte_progress", "row_progress"]

SHOW_AFTER_SECONDS = 2.0


def byte_progress(files: list[Path], *, desc: str) -> tuple[tqdm, Callable[[Path, int], None]]:
    """A bar over the on-disk bytes of ``files`` and the callback that advances it.

    The callback takes ``(file, bytes_read_so_far_in_that_file)``. The bar stays
    hidden for the first two seconds and when stderr is not a terminal.
    """
    sizes = {p: _size(p) for p in files}
    bar = tqdm(total=sum(sizes.values()), desc=desc, unit="B", unit_scale=True,
               unit_divisor=1024, file=sys.stderr, delay=SHOW_AFTER_SECONDS, disable=None,
               leave=False)
    done: dict[Path, int] = {}

    def advance(path: Path, position: int) -> None:
        position = min(position, sizes.get(path, position))
        step = position - done.get(path, 0)
        if step > 0:
            done[path] = position
            bar.update(step)

    return bar, advance


def _size(path: Path) -> int:
    """On-disk size; 0 for an entry that cannot be read (its reader reports why)."""
    try:
        return path.stat().st_size
    except OSError:
        return 0


def row_progress(*, desc: str) -> tqdm:
    """A bar counting exchanges (total unknown), hidden for the first two seconds."""
    return tqdm(desc=desc, unit=" exchanges", unit_scale=True, file=sys.stderr,
                delay=SHOW_AFTER_SECONDS, disable=None, leave=False)


class QueryProgress:
    """One bar per table being built (percent done, with an ETA), as ``DuckDBEngine`` reports.

    Call it as ``on_query_progress``; ``close`` when the scan ends. Bars stay hidden
    for the first two seconds of each table and when stderr is not a terminal.
    """

    def __init__(self) -> None:
        self.bar: tqdm | None = None
        self.name: str | None = None

    def __call__(self, name: str, percent: float) -> None:
        if name != self.name:
            self.close()
            self.name = name
            self.bar = tqdm(total=100, desc=name, unit="%", file=sys.stderr,
                            delay=SHOW_AFTER_SECONDS, disable=None, leave=False,
                            bar_format="{desc}: {percentage:3.0f}%|{bar}| "
                                       "[{elapsed}<{remaining}]")
        if self.bar is not None:
            self.bar.update(max(0.0, min(percent, 100.0) - self.bar.n))
            if percent >= 100:
                self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        self.bar, self.name = None, None

    def __enter__(self) -> QueryProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
