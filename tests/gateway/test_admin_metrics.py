"""Models list, admin endpoint (token, account state, policy) and Prometheus metrics."""

from __future__ import annotations

import httpx

from distillguard.gateway import admin_app
from distillguard.gateway.state import MemoryState
from tests.gateway.conftest import ServerThread, gateway_config


def test_models_lists_the_served_models_in_openai_format(gateway_factory):
    gw = gateway_factory()
    body = gw.client.get("/v1/models").json()
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == ["model-s1", "model-b1", "model-b2"]
    assert all(m["object"] == "model" for m in body["data"])


def test_admin_shows_account_state_and_policy_behind_a_token(gateway_factory):
    config = gateway_config(rules=[{"name": "slow-free", "action": "throttle",
                                    "when": {"tiers": ["free"]}}],
                            throttle={"account": {"requests_per_minute": 60,
                                                  "burst_seconds": 10}})
    # The buckets' clock stands still: what the admin shows does not depend on how long
    # the requests took (a bucket refilling on a loaded machine showed 10, not 7).
    gw = gateway_factory(config, state=MemoryState(clock=lambda: 1000.0))
    for i in range(3):
        assert gw.chat("sk-bob", f"Explain step by step, show your reasoning: {i}+1?"
                       ).status_code == 200
    gw.flush()
    with ServerThread(admin_app(gw.gateway, token="s3cret"), lifespan="off",
                      gateway=config) as admin:
        assert httpx.get(admin.url + "/admin/policy").status_code == 401
        auth = {"authorization": "Bearer s3cret"}
        policy = httpx.get(admin.url + "/admin/policy", headers=auth).json()
        assert policy["mode"] == "enforce" and policy["state"] == "memory"
        assert policy["rules"][0]["name"] == "slow-free"
        assert policy["throttle"]["account"]["requests"]["per_minute"] == 60
        bob = httpx.get(admin.url + "/admin/accounts/acct-bob", headers=auth).json()
    assert bob["in_key_table"] and bob["tier"] == "free" and not bob["verified"]
    assert bob["window"]["requests"] == 3 and bob["window"]["shares"]["cot_elicitation"] == 1.0
    assert bob["decision"] == {"action": "throttle", "rule": "slow-free", "shadow": False,
                               "enforced": "throttle"}
    assert bob["limiter_levels"]["thr-acct:acct-bob:req"] == 7  # 3 taken from 10


def test_metrics_count_requests_actions_latency_and_errors(gateway_factory):
    gw = gateway_factory(gateway_config(rules=[{"name": "no-free", "action": "block",
                                                "when": {"tiers": ["free"]}}]))
    assert gw.chat("sk-alice", "hi").status_code == 200
    assert gw.messages("sk-alice", "hi", stream=True).status_code == 200
    assert gw.chat("sk-bob", "hi").status_code == 403
    assert gw.chat("sk-alice", "hi", model="nope").status_code == 400
    text = gw.metrics()
    lines = set(text.splitlines())
    assert ('distillguard_gateway_requests_total{action="allow",api="openai",rule="",'
            'shadow="false",verdict=""} 1.0') in lines
    assert ('distillguard_gateway_requests_total{action="block",api="openai",rule="no-free",'
            'shadow="false",verdict=""} 1.0') in lines
    assert 'distillguard_gateway_responses_total{api="openai",status="403"} 1.0' in lines
    assert 'distillguard_gateway_rejected_total{api="openai",reason="model_not_found"} 1.0' \
        in lines
    assert 'distillguard_gateway_added_latency_seconds_count{api="openai"} 2.0' in lines
    assert 'distillguard_gateway_upstream_latency_seconds_count{api="anthropic"} 1.0' in lines
    assert any(line.startswith('distillguard_gateway_added_latency_seconds_bucket{api="openai",'
                               'le="0.01"}') for line in lines)


def test_per_request_metrics_render_as_prometheus_clients_own(gateway_factory):
    """The plain counts behind the per-request metrics render exactly what
    prometheus_client's Counter and Histogram render for the same observations."""
    import re

    from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

    from distillguard.gateway.metrics import (
        _ADDED_BUCKETS,
        _UPSTREAM_BUCKETS,
        ExchangeCounts,
    )

    observations = [("openai", 200, ("allow", "", "", "false"), 0.0003, 0.002),
                    ("openai", 200, ("allow", "", "", "false"), 0.00025, 0.0),
                    ("anthropic", 429, ("throttle", "r", "review", "true"), 0.2, 7.0),
                    ("openai", 502, None, 0.0001, 0.0005), ("openai", 200, None, 3.0, 200.0)]
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    counts = ExchangeCounts()
    ours.register(counts)
    requests = Counter(*ExchangeCounts._REQUESTS, registry=theirs)
    responses = Counter(*ExchangeCounts._RESPONSES, registry=theirs)
    added = Histogram(*ExchangeCounts._ADDED, ["api"], buckets=_ADDED_BUCKETS, registry=theirs)
    upstream = Histogram(*ExchangeCounts._UPSTREAM, ["api"], buckets=_UPSTREAM_BUCKETS,
                         registry=theirs)
    for api, status, decided, added_s, upstream_s in observations:
        counts.exchange(api, status, decided, added_s, upstream_s)
        responses.labels(api, str(status)).inc()
        if decided is not None:
            requests.labels(api, *decided).inc()
        added.labels(api).observe(added_s)
        if upstream_s:
            upstream.labels(api).observe(upstream_s)

    def text(registry: CollectorRegistry) -> list[str]:
        rendered = generate_latest(registry).decode()
        return sorted(re.sub(r"(_created\{.*\}) \S+$", r"\1 T", line)
                      for line in rendered.splitlines())

    assert text(ours) == text(theirs)
    assert 'distillguard_gateway_added_latency_seconds_bucket{api="openai",le="0.00025"} 2.0' \
        in text(ours)
