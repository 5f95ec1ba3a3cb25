"""The watchlist: account verdicts of the latest findings.json, re-read when it changes.

The file's modification time is checked every ``poll_seconds``; a new file is
read whole and swapped in at once, so a request sees either the old list or the
new one. A file that cannot be read or parsed (a scan still writing it) keeps
the previous list and is tried again at the next change.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from distillguard.gateway.periodic import Periodic

__all__ = ["Watchlist", "WatchlistEntry"]


@dataclass(frozen=True, slots=True)
class WatchlistEntry:
    verdict: str
    score: float
    campaign_id: str | None
    reasons: tuple[str, ...]


class Watchlist:
    def __init__(self, path: str | Path | None, *, poll_seconds: float = 2.0) -> None:
        self.path = Path(path) if path else None
        self.poll_seconds = poll_seconds
        self.entries: dict[str, WatchlistEntry] = {}
        self.generated_at: str | None = None
        self.loads = 0
        self.error: str | None = None
        self._mtime: int | None = None
        self._timer = Periodic(poll_seconds, self.reload_if_changed)

    def get(self, account_id: str) -> WatchlistEntry | None:
        return self.entries.get(account_id)

    def reload_if_changed(self) -> bool:
        """Re-read the file when its modification time changed; True when a new list is in."""
        if self.path is None:
            return False
        try:
            mtime = self.path.stat().st_mtime_ns
        except OSError as exc:
            self.error = f"cannot read {self.path}: {exc}"
            return False
        if mtime == self._mtime:
            return False
        try:
            findings = orjson.loads(self.path.read_bytes())
            entries = _entries(findings)
        except (OSError, orjson.JSONDecodeError, TypeError, KeyError, AttributeError) as exc:
            self.error = f"cannot use {self.path}: {exc}"
            return False
        self._mtime = mtime
        self.entries = entries
        self.generated_at = findings.get("generated_at")
        self.loads += 1
        self.error = None
        return True

    def start(self) -> None:
        self.reload_if_changed()
        if self.path is not None:
            self._timer.start()

    async def close(self) -> None:
        await self._timer.stop()


def _entries(findings: dict[str, Any]) -> dict[str, WatchlistEntry]:
    return {a["account_id"]: WatchlistEntry(a["verdict"], float(a.get("score") or 0.0),
                                            a.get("campaign_id"), tuple(a.get("reasons") or ()))
            for a in findings["accounts"]}
