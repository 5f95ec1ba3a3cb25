"""Output safeguards per account risk (``distillguard.safeguards``), applied by the gateway.

An account the watchlist does not list (judged legitimate) costs nothing here: the
policy's decision already says it has no verdict, and no plan is looked up. For an
account under review the plan of its verdict (``safeguards.yaml``) says what its answers
get; plans are built once per account and watchlist (two HMACs), not per request.

What the gateway can and cannot do. It proxies text that it does not generate:

- the **watermark** must be applied by the serving stack while it samples. The gateway
  asks for it with one request header (``WATERMARK_HEADER``: the group's derived key and
  the strength), which the serving stack reads
  (``WatermarkLogitsProcessor.from_header``). An upstream that ignores the header returns
  unwatermarked answers, and the gateway cannot tell; a client's own header of that name
  never reaches the upstream (only listed headers are passed on).
- the **decoy tool** is added to the request's tool list (requests that list tools only);
- the **reasoning summary**, **answer-only mode** and the **signature phrase** rewrite the
  answer on its way back, streamed or not.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from distillguard.gateway.policy import Decision
from distillguard.gateway.watchlist import Watchlist
from distillguard.safeguards.canaries import Canary, should_mark
from distillguard.safeguards.plan import (
    NO_SAFEGUARDS,
    SafeguardPlan,
    SafeguardPolicy,
    load_safeguard_policy,
    plan_for,
)
from distillguard.safeguards.reasoning import answer_only, summarize_reasoning
from distillguard.safeguards.watermark import WATERMARK_HEADER

__all__ = ["OutputGuard", "OutputSafeguards", "Rewrite", "SafeguardsMode"]

SafeguardsMode = Literal["enforce", "shadow", "off"]
Reasoning = Literal["keep", "summary", "drop"]
_STRENGTH = {"keep": 0, "summary": 1, "drop": 2}


@dataclass(slots=True)
class Rewrite:
    """What the answer's way back does: ``summary`` replaces raw reasoning (None: kept),
    ``cut`` shortens an answer to its result (None: untouched), ``signature``: the canary
    whose phrase is appended as a closing line (None: nothing)."""

    reasoning: Reasoning = "keep"
    summary: Callable[[str], str] | None = None
    cut: Callable[[str], str] | None = None
    signature: Canary | None = None


@dataclass(slots=True)
class OutputGuard:
    """One request's safeguards: its plan, whether they are only shadowed, and what was
    done (``applied``, for the log)."""

    plan: SafeguardPlan
    shadow: bool
    sign: bool
    applied: list[str] = field(default_factory=list)

    def log_field(self) -> dict[str, Any]:
        """The exchange record's ``safeguards`` field (an extra field, as the spec allows):
        the group and what was applied, or with ``shadow`` what would have been."""
        record: dict[str, Any] = {"group": self.plan.group, "applied": self.applied}
        if self.shadow:
            record["shadow"] = True
            record["applied"] = self.planned()
        return record

    def planned(self) -> list[str]:
        plan = self.plan
        out = []
        if plan.watermark_key:
            out.append("watermark_requested")
        if plan.decoy_tool:
            out.append("decoy_tool")
        if plan.reasoning != "keep":
            out.append(f"reasoning_{plan.reasoning}")
        if plan.answer_only:
            out.append("answer_only")
        if self.sign:
            out.append("signature")
        return out


class OutputSafeguards:
    """The gateway's safeguards: the policy file, the secrets, and each listed account's
    plan (rebuilt when the watchlist changes)."""

    def __init__(self, watchlist: Watchlist, *, mode: SafeguardsMode,
                 policy: SafeguardPolicy | None = None, watermark_secret: str | None = None,
                 canary_secret: str | None = None) -> None:
        self.watchlist = watchlist
        self.mode = mode
        self.policy = policy or load_safeguard_policy()
        self.watermark_secret = watermark_secret or None
        self.canary_secret = canary_secret or None
        self._plans: dict[str, SafeguardPlan] = {}
        self._plans_of = -1  # the watchlist load the plans were built for

    def summary(self, text: str) -> str:
        """The extractive summary that replaces withheld reasoning."""
        return summarize_reasoning(text, self.policy.summary)

    def plan(self, account_id: str) -> SafeguardPlan:
        if self._plans_of != self.watchlist.loads:
            self._plans, self._plans_of = {}, self.watchlist.loads
        plan = self._plans.get(account_id)
        if plan is None:
            entry = self.watchlist.get(account_id)
            plan = NO_SAFEGUARDS if entry is None else plan_for(
                entry.verdict, entry.campaign_id or account_id, self.policy,
                watermark_secret=self.watermark_secret, canary_secret=self.canary_secret)
            self._plans[account_id] = plan
        return plan

    def guard(self, account_id: str, decision: Decision, request_id: Callable[[], str],
              *, shadow_all: bool) -> OutputGuard | None:
        """The request's safeguards; None for an account without a verdict (legitimate)
        or a plan without any. ``request_id`` is called only when a signature share is
        planned (the keyed draw is on the request id)."""
        if decision.verdict is None or self.mode == "off":
            return None
        plan = self.plan(account_id)
        if not plan.active:
            return None
        sign = plan.signature_share > 0 and plan.canary is not None and should_mark(
            self.canary_secret or "", request_id(), plan.signature_share)
        return OutputGuard(plan, shadow_all or self.mode == "shadow", sign)

    def request_headers(self, guard: OutputGuard | None) -> tuple[tuple[str, str], ...]:
        """Headers for the upstream: the watermark request, when planned and applied."""
        if guard is None or guard.shadow or not guard.plan.watermark_key:
            return ()
        assert guard.plan.watermark_request is not None
        guard.applied.append("watermark_requested")
        return ((WATERMARK_HEADER, guard.plan.watermark_request),)

    def rewrite(self, guard: OutputGuard | None, withhold: bool) -> Rewrite | None:
        """How the answer is rewritten: the policy's ``withhold_reasoning`` action or the
        plan's reasoning rule (the stronger of the two), answer-only mode, the signature.
        None: the answer passes unchanged."""
        if guard is None and not withhold:
            return None
        plan = guard.plan if guard is not None and not guard.shadow else None
        reasoning: Reasoning = "summary" if withhold else "keep"
        if plan is not None and _STRENGTH[plan.reasoning] > _STRENGTH[reasoning]:
            reasoning = plan.reasoning
        rewrite = Rewrite(reasoning=reasoning, summary=None if reasoning == "keep" else (
            self.summary if reasoning == "summary" else _dropped))
        if plan is not None and guard is not None:
            rewrite.cut = answer_only if plan.answer_only else None
            rewrite.signature = plan.canary if guard.sign else None
        if rewrite.summary is None and rewrite.cut is None and rewrite.signature is None:
            return None
        return rewrite


def _dropped(text: str) -> str:
    return ""
