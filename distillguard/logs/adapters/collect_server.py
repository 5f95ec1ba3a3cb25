"""Serve the OTLP/HTTP receiver (``distillguard collect``) with uvicorn."""

from __future__ import annotations

import uvicorn

from distillguard.logs.adapters.receiver import CollectOptions, receiver_app

__all__ = ["run_collect"]


def run_collect(host: str, port: int, options: CollectOptions) -> None:
    """Serve until interrupted; the files are flushed and closed on the way out."""
    import uvloop

    config = uvicorn.Config(receiver_app(options), host=host, port=port, loop="uvloop",
                            http="httptools", lifespan="on", access_log=False,
                            log_level="warning", timeout_keep_alive=30)
    uvloop.run(uvicorn.Server(config).serve())
