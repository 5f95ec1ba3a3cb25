"""An OpenAI- and Anthropic-compatible proxy that scores and acts per request."""

from distillguard.gateway.app import admin_app, gateway_app
from distillguard.gateway.config import GatewayConfig, load_config
from distillguard.gateway.server import GatewayOptions, build_gateway, run_gateway
from distillguard.gateway.service import Gateway

__all__ = [
    "Gateway",
    "GatewayConfig",
    "GatewayOptions",
    "admin_app",
    "build_gateway",
    "gateway_app",
    "load_config",
    "run_gateway",
]
