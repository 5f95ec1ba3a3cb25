"""Serve the gateway (API port and admin port) with uvicorn.

uvicorn runs on uvloop with the httptools parser: without them it falls back to
its pure-Python parser and asyncio's loop, several times slower per request.
"""

from __future__ import annotations

import asyncio
import gc
import os
from dataclasses import dataclass, replace
from pathlib import Path

import uvicorn

from distillguard.gateway.app import admin_app, gateway_app
from distillguard.gateway.config import GatewayConfig
from distillguard.gateway.http_protocol import gateway_protocol
from distillguard.gateway.redis_state import RedisState
from distillguard.gateway.service import Gateway
from distillguard.gateway.state import MemoryState, StateStore

__all__ = ["GatewayOptions", "build_gateway", "run_gateway", "state_store", "uvicorn_config"]


@dataclass
class GatewayOptions:
    upstream: str
    host: str = "127.0.0.1"
    port: int = 8080
    admin_port: int | None = 8081
    admin_token: str | None = None  # from the environment or a file, never the command line
    log_dir: Path | None = None
    state: str = "memory"
    findings: Path | None = None
    otlp_endpoint: str | None = None  # replaces the config's otlp.endpoint


def uvicorn_config(app: object, host: str, port: int, config: GatewayConfig, *,
                   lifespan: str = "on", loop: str = "uvloop") -> uvicorn.Config:
    """How the gateway's apps are served: the gateway's HTTP protocol (head limits, refusals
    in JSON) and none of uvicorn's own proxy-header handling, which would believe
    ``X-Forwarded-For`` from loopback before the gateway's trusted proxies are consulted.
    No ``server: uvicorn`` header: a client has no use for the server's name (and one
    header less is built per response)."""
    protocol = gateway_protocol(config.max_header_bytes, config.max_header_count)
    return uvicorn.Config(app, host=host, port=port, loop=loop, http=protocol,
                          proxy_headers=False, lifespan=lifespan, access_log=False,
                          log_level="warning", timeout_keep_alive=30, server_header=False)


def state_store(spec: str, config: GatewayConfig) -> StateStore:
    """``memory`` or a ``redis://`` URL."""
    if spec.startswith(("redis://", "rediss://", "unix://")):
        return RedisState(spec, hours=config.window_hours,
                          refresh_seconds=config.window_refresh_seconds,
                          timeout=config.redis_timeout, retry_seconds=config.redis_retry_seconds)
    return MemoryState(hours=config.window_hours)


def _env(name: str | None) -> str | None:
    return (os.environ.get(name) or None) if name else None


def build_gateway(config: GatewayConfig, options: GatewayOptions) -> Gateway:
    if options.otlp_endpoint:
        config = replace(config, otlp=replace(
            config.otlp, endpoint=options.otlp_endpoint))
    return Gateway(config, upstream_url=options.upstream, log_dir=options.log_dir,
                   state=state_store(options.state, config), findings=options.findings,
                   upstream_api_key=_env(config.upstream_api_key_env),
                   watermark_secret=_env(config.watermark_secret_env),
                   canary_secret=_env(config.canary_secret_env))


async def _serve_gateway(config: GatewayConfig, options: GatewayOptions) -> None:
    gateway = build_gateway(config, options)
    configs = [uvicorn_config(gateway_app(gateway), options.host, options.port, config)]
    if options.admin_port:
        configs.append(uvicorn_config(admin_app(gateway, token=options.admin_token),
                                      options.host, options.admin_port, config, lifespan="off"))
    # What is loaded by now (modules, pyarrow, the config) lives as long as the process:
    # frozen, the garbage collector stops scanning it again at every full collection.
    gc.collect()
    gc.freeze()
    await asyncio.gather(*(uvicorn.Server(c).serve() for c in configs))


def run_gateway(config: GatewayConfig, options: GatewayOptions) -> None:
    """Serve until interrupted (SIGINT/SIGTERM flush the log and stop)."""
    import uvloop

    uvloop.run(_serve_gateway(config, options))
