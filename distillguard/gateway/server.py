"""Serve the gateway (API port and admin port) with uvicorn.

uvicorn runs on uvloop with the httptools parser: without them it falls back to
its pure-Python parser and asyncio's loop, several times slower per request.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
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


def uvicorn_config(app: object, host: str, port: int, config: GatewayConfig, *,
                   lifespan: str = "on", loop: str = "uvloop") -> uvicorn.Config:
    """How the gateway's apps are served: the gateway's HTTP protocol (head limits, refusals
    in JSON) and none of uvicorn's own proxy-header handling, which would believe
    ``X-Forwarded-For`` from loopback before the gateway's trusted proxies are consulted."""
    protocol = gateway_protocol(config.max_header_bytes, config.max_header_count)
    return uvicorn.Config(app, host=host, port=port, loop=loop, http=protocol,
                          proxy_headers=False, lifespan=lifespan, access_log=False,
                          log_level="warning", timeout_keep_alive=30)


def state_store(spec: str, config: GatewayConfig) -> StateStore:
    """``memory`` or a ``redis://`` URL."""
    if spec.startswith(("redis://", "rediss://", "unix://")):
        return RedisState(spec, hours=config.window_hours,
                          refresh_seconds=config.window_refresh_seconds,
                          timeout=config.redis_timeout, retry_seconds=config.redis_retry_seconds)
    return MemoryState(hours=config.window_hours)


def build_gateway(config: GatewayConfig, options: GatewayOptions) -> Gateway:
    key = os.environ.get(config.upstream_api_key_env) if config.upstream_api_key_env else None
    return Gateway(config, upstream_url=options.upstream, log_dir=options.log_dir,
                   state=state_store(options.state, config), findings=options.findings,
                   upstream_api_key=key or None)


async def _serve_gateway(config: GatewayConfig, options: GatewayOptions) -> None:
    gateway = build_gateway(config, options)
    configs = [uvicorn_config(gateway_app(gateway), options.host, options.port, config)]
    if options.admin_port:
        configs.append(uvicorn_config(admin_app(gateway, token=options.admin_token),
                                      options.host, options.admin_port, config, lifespan="off"))
    await asyncio.gather(*(uvicorn.Server(c).serve() for c in configs))


def run_gateway(config: GatewayConfig, options: GatewayOptions) -> None:
    """Serve until interrupted (SIGINT/SIGTERM flush the log and stop)."""
    import uvloop

    uvloop.run(_serve_gateway(config, options))
