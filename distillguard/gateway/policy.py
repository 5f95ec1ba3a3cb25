"""Which action a request gets: the config's rules over the account's watchlist entry,
key-table attributes and window. First matching rule wins; none: allow."""

from __future__ import annotations

from dataclasses import dataclass

from distillguard.gateway.account_window import WindowStats
from distillguard.gateway.config import AccountInfo, Action, GatewayConfig, Rule
from distillguard.gateway.watchlist import WatchlistEntry

__all__ = ["ALLOW", "Decision", "decide", "rule_matches"]


@dataclass(frozen=True, slots=True)
class Decision:
    """The action decided, the rule that decided it, and whether it is only shadowed
    (logged and counted, not applied)."""

    action: Action
    rule: str | None
    shadow: bool
    verdict: str | None

    @property
    def enforced(self) -> Action:
        return "allow" if self.shadow else self.action


ALLOW = Decision("allow", None, False, None)


def rule_matches(rule: Rule, account: AccountInfo, entry: WatchlistEntry | None,
                 window: WindowStats | None) -> bool:
    if rule.verdicts is not None and (entry is None or entry.verdict not in rule.verdicts):
        return False
    if rule.in_campaign is not None and (entry is not None and entry.campaign_id is not None
                                         ) != rule.in_campaign:
        return False
    if rule.tiers is not None and account.tier not in rule.tiers:
        return False
    if rule.verified is not None and account.verified != rule.verified:
        return False
    if not rule.needs_window:
        return True
    if window is None or window.requests < rule.min_requests:
        return False
    if any(window.shares.get(name, 0.0) < floor for name, floor in rule.shares_at_least.items()):
        return False
    if (rule.requests_per_minute_at_least is not None
            and window.requests_last_minute < rule.requests_per_minute_at_least):
        return False
    return not (rule.hours_active_at_least is not None
                and window.hours_active < rule.hours_active_at_least)


def decide(config: GatewayConfig, account: AccountInfo, entry: WatchlistEntry | None,
           window: WindowStats | None) -> Decision:
    """The decision for one request of ``account``; ``window`` None when no rule needs it."""
    verdict = entry.verdict if entry is not None else None
    for rule in config.rules:
        if rule_matches(rule, account, entry, window):
            shadow = rule.shadow or config.mode == "shadow"
            if rule.action == "allow":
                return Decision("allow", rule.name, False, verdict)
            return Decision(rule.action, rule.name, shadow, verdict)
    return Decision("allow", None, False, verdict) if verdict else ALLOW
