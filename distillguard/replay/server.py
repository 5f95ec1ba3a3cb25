"""Serve the replay upstream with uvicorn (uvloop and httptools, as the gateway is served)."""

from __future__ import annotations

from pathlib import Path

import uvicorn

from distillguard.replay.app import replay_app
from distillguard.replay.corpus import ReplayCorpus

__all__ = ["run_replay"]


def run_replay(host: str = "127.0.0.1", port: int = 8100, *, corpora: Path | None = None,
               reasoning: str = "requested", delay_seconds: float = 0.0) -> None:
    """Serve until interrupted."""
    import uvloop

    app = replay_app(ReplayCorpus.load(corpora), reasoning=reasoning,
                     delay_seconds=delay_seconds)
    config = uvicorn.Config(app, host=host, port=port, loop="uvloop", http="httptools",
                            lifespan="off", access_log=False, log_level="warning",
                            timeout_keep_alive=30)
    uvloop.run(uvicorn.Server(config).serve())
