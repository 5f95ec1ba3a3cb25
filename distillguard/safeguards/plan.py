"""Which safeguards apply to which verdict (``safeguards/data/safeguards.yaml``).

``plan_for`` is the gateway's one call per request: the account's watchlist verdict and
group in, a ``SafeguardPlan`` out. An account that is not on the watchlist (judged
legitimate) always gets ``NO_SAFEGUARDS``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from distillguard.errors import RuleValidationError
from distillguard.safeguards.canaries import Canary, canary_for
from distillguard.safeguards.reasoning import SummaryParams
from distillguard.safeguards.watermark import WatermarkParams, derive_key, watermark_header

__all__ = ["NO_SAFEGUARDS", "VERDICTS", "SafeguardPlan", "SafeguardPolicy", "VerdictSafeguards",
           "load_safeguard_policy", "plan_for"]

Reasoning = Literal["keep", "summary", "drop"]
VERDICTS = ("review", "extraction")


@dataclass(frozen=True, slots=True)
class VerdictSafeguards:
    reasoning: Reasoning = "keep"
    answer_only: bool = False
    watermark: bool = False
    signature_share: float = 0.0
    decoy_tool: bool = False


@dataclass(frozen=True, slots=True)
class SafeguardPolicy:
    watermark: WatermarkParams
    summary: SummaryParams
    verdicts: dict[str, VerdictSafeguards]


@dataclass(frozen=True, slots=True)
class SafeguardPlan:
    """What to do to one request's answer. ``watermark_key`` is what the serving stack's
    logits processor needs (None: no watermark); ``canary`` the group's canaries (None:
    neither phrase nor decoy)."""

    reasoning: Reasoning = "keep"
    answer_only: bool = False
    watermark_key: str | None = None
    watermark: WatermarkParams | None = None
    signature_share: float = 0.0
    decoy_tool: bool = False
    canary: Canary | None = None
    group: str | None = None
    # The WATERMARK_HEADER value asking for the watermark, built once with the plan (plans
    # are cached per account) rather than per request.
    watermark_request: str | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.watermark_key and self.watermark is not None:
            object.__setattr__(self, "watermark_request",
                               watermark_header(self.watermark_key, self.watermark))

    @property
    def active(self) -> bool:
        return self != NO_SAFEGUARDS


NO_SAFEGUARDS = SafeguardPlan()


def plan_for(verdict: str | None, group: str | None, policy: SafeguardPolicy, *,
             watermark_secret: str | None, canary_secret: str | None) -> SafeguardPlan:
    """The plan for an account with ``verdict`` (None: not on the watchlist) in ``group``
    (its campaign id, else its account id). Without a secret, the safeguard that needs it
    is off."""
    rules = policy.verdicts.get(verdict or "")
    if rules is None or group is None:
        return NO_SAFEGUARDS
    key = derive_key(watermark_secret, group) if rules.watermark and watermark_secret else None
    wants_canary = rules.signature_share > 0 or rules.decoy_tool
    canary = canary_for(canary_secret, group) if wants_canary and canary_secret else None
    return SafeguardPlan(reasoning=rules.reasoning, answer_only=rules.answer_only,
                         watermark_key=key, watermark=policy.watermark if key else None,
                         signature_share=rules.signature_share if canary else 0.0,
                         decoy_tool=rules.decoy_tool and canary is not None, canary=canary,
                         group=group)


def _fail(origin: str, what: str, expected: str, got: Any) -> RuleValidationError:
    return RuleValidationError(f"safeguards {origin}: '{what}' must be {expected}. "
                               f"Got {got!r} instead.")


def _verdict(name: str, data: Any, origin: str) -> VerdictSafeguards:
    if not isinstance(data, dict):
        raise _fail(origin, f"verdicts.{name}", "a mapping", data)
    unknown = set(data) - set(VerdictSafeguards.__dataclass_fields__)
    if unknown:
        raise _fail(origin, f"verdicts.{name}", "free of unknown keys", sorted(unknown))
    if data.get("reasoning", "keep") not in ("keep", "summary", "drop"):
        raise _fail(origin, f"verdicts.{name}.reasoning", "keep, summary or drop",
                    data.get("reasoning"))
    for flag in ("answer_only", "watermark", "decoy_tool"):
        if not isinstance(data.get(flag, False), bool):
            raise _fail(origin, f"verdicts.{name}.{flag}", "true or false", data.get(flag))
    share = data.get("signature_share", 0.0)
    if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 1:
        raise _fail(origin, f"verdicts.{name}.signature_share", "a number in [0, 1]", share)
    return VerdictSafeguards(reasoning=data.get("reasoning", "keep"),
                             answer_only=data.get("answer_only", False),
                             watermark=data.get("watermark", False),
                             signature_share=float(share), decoy_tool=data.get("decoy_tool", False))


def load_safeguard_policy(path: str | Path | None = None) -> SafeguardPolicy:
    """Load a safeguards file (the packaged default when ``path`` is None).

    Raises ``RuleValidationError`` naming the field that is missing or out of range.
    """
    if path is None:
        text = resources.files("distillguard.safeguards").joinpath(
            "data/safeguards.yaml").read_text(encoding="utf-8")
        origin = "(packaged default)"
    else:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            msg = f"cannot read safeguards file {path}: {exc}"
            raise RuleValidationError(msg) from exc
        origin = str(path)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        msg = f"safeguards {origin} is not YAML: {exc}"
        raise RuleValidationError(msg) from exc
    if not isinstance(data, dict) or data.get("version") != 1:
        raise _fail(origin, "version", "1", data.get("version") if isinstance(data, dict) else data)
    verdicts = data.get("verdicts") or {}
    if not isinstance(verdicts, dict) or set(verdicts) - set(VERDICTS):
        raise _fail(origin, "verdicts", f"a mapping with keys among {', '.join(VERDICTS)}",
                    verdicts)
    try:
        watermark = WatermarkParams(**(data.get("watermark") or {}))
        summary = SummaryParams(**(data.get("reasoning_summary") or {}))
    except TypeError as exc:
        raise _fail(origin, "watermark/reasoning_summary", "known keys only", str(exc)) from exc
    if summary.max_sentences < 1 or summary.max_chars < 40:
        raise _fail(origin, "reasoning_summary", "max_sentences >= 1 and max_chars >= 40",
                    summary)
    return SafeguardPolicy(watermark, summary,
                           {name: _verdict(name, rules, origin) for name, rules in verdicts.items()})
