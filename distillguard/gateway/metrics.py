"""Prometheus metrics of one gateway (its own registry, served at ``/metrics``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["GatewayMetrics"]

# Added latency is sub-millisecond when healthy: fine buckets at the low end.
_ADDED_BUCKETS = (0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.01,
                  0.025, 0.05, 0.1)
_UPSTREAM_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
                     60, 120)


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "distillguard_gateway_requests", "Requests by API, decided action, policy rule, "
            "watchlist verdict and whether the action was only shadowed.",
            ["api", "action", "rule", "verdict", "shadow"], registry=r)
        self.responses = Counter("distillguard_gateway_responses", "Responses by API and status.",
                                 ["api", "status"], registry=r)
        self.rejected = Counter("distillguard_gateway_rejected",
                                "Requests refused before any policy: bad input, no key, too large.",
                                ["api", "reason"], registry=r)
        self.added_latency = Histogram(
            "distillguard_gateway_added_latency_seconds",
            "Time the gateway adds to a request: total minus time waiting on the upstream.",
            ["api"], buckets=_ADDED_BUCKETS, registry=r)
        self.upstream_latency = Histogram(
            "distillguard_gateway_upstream_latency_seconds",
            "Time from sending a request upstream to the end of its response.", ["api"],
            buckets=_UPSTREAM_BUCKETS, registry=r)
        self.upstream_errors = Counter("distillguard_gateway_upstream_errors",
                                       "Upstream failures: timeout, unreachable, 5xx status.",
                                       ["api", "kind"], registry=r)
        self.client_disconnects = Counter("distillguard_gateway_client_disconnects",
                                          "Clients that went away mid-stream.", ["api"],
                                          registry=r)
        self.reasoning_withheld = Counter("distillguard_gateway_reasoning_withheld_chars",
                                          "Characters of reasoning replaced by a summary.",
                                          ["api"], registry=r)
        self.scored = Counter("distillguard_gateway_scored_requests",
                              "Requests scored with the signal functions.", registry=r)
        self.state_errors = Counter("distillguard_gateway_state_errors",
                                    "State store (Redis) failures; the limiter failed open.",
                                    registry=r)
        self.watchlist_accounts = Gauge("distillguard_gateway_watchlist_accounts",
                                        "Accounts in the loaded watchlist.", registry=r)
        self.log_records = Gauge("distillguard_gateway_log_records",
                                 "Exchange records written to the log since start.", registry=r)
        self.spans = Gauge("distillguard_gateway_otlp_spans",
                           "Exchanges exported as OTLP spans since start, by outcome "
                           "(sent, dropped, queued).", ["outcome"], registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)
