"""Prometheus metrics of one gateway (its own registry, served at ``/metrics``).

The four metrics every request updates (requests, responses, added and upstream
latency) are plain counts in dictionaries, turned into Prometheus families only
when ``/metrics`` is read (``ExchangeCounts``): prometheus_client's ``labels`` and
its locked ``inc`` and ``observe`` cost 10-20 µs each on a busy machine, a tenth of
the gateway's CPU per request at eight of them. The rare ones (rejections, upstream
errors, state errors) stay prometheus_client metrics.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

__all__ = ["ExchangeCounts", "GatewayMetrics"]

# Added latency is sub-millisecond when healthy: fine buckets at the low end.
_ADDED_BUCKETS = (0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.01,
                  0.025, 0.05, 0.1)
_UPSTREAM_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
                     60, 120)


class _Histogram:
    """Observations of one label set: counts per bucket (not cumulative) and their sum."""

    __slots__ = ("counts", "created", "total")

    def __init__(self, buckets: int) -> None:
        self.counts = [0] * (buckets + 1)  # the last one: above every bound (+Inf)
        self.total = 0.0
        self.created = time.time()


class ExchangeCounts:
    """The per-request metrics, counted in plain dictionaries by label values, rendered as
    prometheus_client renders its own ``Counter`` and ``Histogram`` (``_total``,
    ``_bucket``, ``_count``, ``_sum`` and ``_created`` samples)."""

    _REQUESTS = ("distillguard_gateway_requests", "Requests by API, decided action, policy rule, "
                 "watchlist verdict and whether the action was only shadowed.",
                 ("api", "action", "rule", "verdict", "shadow"))
    _RESPONSES = ("distillguard_gateway_responses", "Responses by API and status.",
                  ("api", "status"))
    _ADDED = ("distillguard_gateway_added_latency_seconds",
              "Time the gateway adds to a request: total minus time waiting on the upstream.")
    _UPSTREAM = ("distillguard_gateway_upstream_latency_seconds",
                 "Time from sending a request upstream to the end of its response.")

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, str, str, str], list[float]] = {}
        self.responses: dict[tuple[str, str], list[float]] = {}
        self.added: dict[str, _Histogram] = {}
        self.upstream: dict[str, _Histogram] = {}

    def exchange(self, api: str, status: int, decided: tuple[str, str, str, str] | None,
                 added_seconds: float, upstream_seconds: float) -> None:
        """One request's metrics: its response, its decision (action, rule, verdict, shadow),
        the time the gateway added and the time spent on the upstream (0: none)."""
        _count(self.responses, (api, str(status)))
        if decided is not None:
            _count(self.requests, (api, *decided))
        _observe(self.added, api, _ADDED_BUCKETS, added_seconds)
        if upstream_seconds:
            _observe(self.upstream, api, _UPSTREAM_BUCKETS, upstream_seconds)

    def collect(self) -> Iterator[Metric]:
        for (name, doc, labels), counts in ((self._REQUESTS, self.requests),
                                            (self._RESPONSES, self.responses)):
            family = CounterMetricFamily(name, doc, labels=labels)
            for values, (n, created) in list(counts.items()):
                family.add_metric(values, n, created=created)
            yield family
        for (name, doc), bounds, histograms in ((self._ADDED, _ADDED_BUCKETS, self.added),
                                                (self._UPSTREAM, _UPSTREAM_BUCKETS,
                                                 self.upstream)):
            family = HistogramMetricFamily(name, doc, labels=["api"])
            for api, h in list(histograms.items()):
                cumulative, buckets = 0, []
                for bound, n in zip((*bounds, float("inf")), h.counts, strict=True):
                    cumulative += n
                    buckets.append((floatToGoString(bound), float(cumulative)))
                family.add_metric([api], buckets, h.total)
                family.samples.append(Sample(name + "_created", {"api": api}, h.created))
            yield family

    def describe(self) -> Iterator[Metric]:
        return iter(())


def _count(counts: dict, key: tuple[str, ...]) -> None:
    entry = counts.get(key)
    if entry is None:
        counts[key] = [1.0, time.time()]
    else:
        entry[0] += 1


def _observe(histograms: dict[str, _Histogram], key: str, bounds: tuple[float, ...],
             value: float) -> None:
    h = histograms.get(key)
    if h is None:
        h = histograms[key] = _Histogram(len(bounds))
    h.counts[bisect_left(bounds, value)] += 1  # the first bucket whose bound >= value
    h.total += value


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.exchanges = ExchangeCounts()
        r.register(self.exchanges)
        self.rejected = Counter("distillguard_gateway_rejected",
                                "Requests refused before any policy: bad input, no key, too large.",
                                ["api", "reason"], registry=r)
        self.upstream_errors = Counter("distillguard_gateway_upstream_errors",
                                       "Upstream failures: timeout, unreachable, 5xx status.",
                                       ["api", "kind"], registry=r)
        self.client_disconnects = Counter("distillguard_gateway_client_disconnects",
                                          "Clients that went away mid-stream.", ["api"],
                                          registry=r)
        self.reasoning_withheld = Counter("distillguard_gateway_reasoning_withheld_chars",
                                          "Characters of reasoning replaced by a summary.",
                                          ["api"], registry=r)
        self.safeguards = Counter("distillguard_gateway_safeguards_applied",
                                  "Output safeguards applied to answers (watermark requested, "
                                  "decoy tool, reasoning summary or drop, answer only, "
                                  "signature).", ["api", "safeguard"], registry=r)
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
