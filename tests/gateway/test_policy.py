"""Rules over watchlist, key table and window; token buckets."""

from __future__ import annotations

import pytest

from distillguard.errors import RuleValidationError
from distillguard.gateway.account_window import WindowStats
from distillguard.gateway.config import AccountInfo, BucketLimit, load_config
from distillguard.gateway.policy import decide
from distillguard.gateway.token_bucket import BucketCharge, MemoryBuckets
from distillguard.gateway.watchlist import WatchlistEntry

FREE = AccountInfo("a", tier="free", verified=False)
PRO = AccountInfo("b", tier="pro", verified=True)
HARVESTING = WindowStats(500, {"any_technique": 0.9, "templated": 0.95}, 10, 6)


def test_default_policy_acts_on_the_watchlist_and_shadows_content_rules() -> None:
    config = load_config()
    extraction = WatchlistEntry("extraction", 0.9, "C1", ())
    review = WatchlistEntry("review", 0.5, None, ())
    assert decide(config, PRO, extraction, None).enforced == "block"
    assert decide(config, PRO, review, None).enforced == "withhold_reasoning"
    d = decide(config, FREE, None, HARVESTING)
    assert (d.action, d.rule, d.shadow, d.enforced) == (
        "require_verification", "unverified-harvesting", True, "allow")
    assert decide(config, PRO, None, HARVESTING).action == "allow"  # verified: rule skipped
    small = WindowStats(20, HARVESTING.shares, 1, 1)
    assert decide(config, FREE, None, small).action == "allow"  # too few requests


def test_shadow_mode_shadows_every_rule() -> None:
    config = load_config(overrides={"mode": "shadow"})
    d = decide(config, PRO, WatchlistEntry("extraction", 0.9, "C1", ()), None)
    assert d.action == "block" and d.shadow and d.enforced == "allow"


def test_rule_conditions() -> None:
    config = load_config(overrides={"rules": [
        {"name": "fast", "action": "throttle",
         "when": {"requests_per_minute_at_least": 60, "hours_active_at_least": 20}},
        {"name": "campaign", "action": "block", "when": {"in_campaign": True}}]})
    busy = WindowStats(5000, {}, 90, 22)
    assert decide(config, PRO, None, busy).enforced == "throttle"
    assert decide(config, PRO, None, WindowStats(5000, {}, 90, 8)).enforced == "allow"
    assert decide(config, PRO, WatchlistEntry("review", 0.5, "C2", ()),
                  WindowStats()).enforced == "block"
    assert decide(config, PRO, WatchlistEntry("review", 0.5, None, ()),
                  WindowStats()).enforced == "allow"


@pytest.mark.parametrize("override", [
    {"rules": [{"name": "x", "action": "explode"}]},
    {"rules": [{"name": "x", "action": "block", "when": {"colour": "red"}}]},
    {"rules": [{"name": "x", "action": "block", "when": {"shares_at_least": {"vibes": 1}}}]},
    {"rules": [{"name": "x", "action": "block", "when": {"verdict": ["guilty"]}}]},
    {"mode": "maybe"},
    {"max_body_bytes": "big"},
])
def test_bad_config_fails_on_load(override) -> None:
    with pytest.raises(RuleValidationError):
        load_config(overrides=override)


def test_token_bucket_admits_all_or_none_and_refills() -> None:
    buckets = MemoryBuckets()
    req = BucketCharge("r", BucketLimit(per_minute=60, burst_seconds=2), 1)  # 1/s, capacity 2
    tok = BucketCharge("t", BucketLimit(per_minute=600, burst_seconds=1), 8)  # 10/s, capacity 10
    assert buckets.take([req, tok], now=0.0) == 0
    wait = buckets.take([req, tok], now=0.0)  # tokens: 2 left, 8 needed
    assert wait == pytest.approx(0.6)
    assert buckets.level("r", req.limit, 0.0) == 1  # the refused take charged nothing
    assert buckets.take([req, tok], now=0.6) == 0
    buckets.charge([BucketCharge("t", tok.limit, 20)], now=0.6)  # usage larger than estimated
    assert buckets.take([tok], now=0.6) == pytest.approx(2.8)
