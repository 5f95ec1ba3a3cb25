"""Scenarios as data: ``distillguard/sim/scenarios/<name>.yaml`` loaded into frozen dataclasses.

A scenario file may ``extends: <other>`` and override top-level keys. Every
problem is reported as an ``InputError`` naming the field, when the file loads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml

from distillguard.errors import InputError
from distillguard.logs.schema import ACCOUNT_TIERS
from distillguard.sim.paraphrase import DEFAULT_STRENGTH, STRENGTHS, parse_strength

__all__ = [
    "DEFAULT_SCENARIO",
    "EVASION_KNOBS",
    "SPLITS",
    "Adoption",
    "Archetype",
    "Behavior",
    "Campaign",
    "Creation",
    "Pathway",
    "Scenario",
    "Schedule",
    "Stream",
    "Waves",
    "list_scenarios",
    "load_scenario",
    "parse_evasion",
]

DEFAULT_SCENARIO = "feb2026"
EVASION_KNOBS = ("infra", "timing", "volume", "mixing", "templates", "paraphrase")
SPLITS = ("all", "train", "test")
PROFILES = ("waking", "business", "campus", "flat")
NETWORKS = ("residential", "cloud", "research", "campus", "corporate", "datacenter", "proxy",
            "reseller")
CLIENTS = ("consumer", "sdk", "app", "custom")
PAYMENTS = ("own", "group", "pooled")
_SCENARIO_DIR = "scenarios"


@dataclass(frozen=True)
class Adoption:
    """When an account moves to the new model: delay (lognormal hours), share moved, ramp."""

    delay_hours: tuple[float, float]
    share: tuple[float, float]
    ramp_hours: float
    coordinated: bool = False


@dataclass(frozen=True)
class Creation:
    """Accounts opened in batches: about ``batch`` at a time, within ``spread_hours``."""

    batch: float
    spread_hours: float


@dataclass(frozen=True)
class Schedule:
    """When an operator's (or a team's) jobs run: on a share ``days`` of the days, ``windows``
    runs a day (a range) of ``hours`` hours each (a range, UTC), at ``floor`` of full
    intensity between runs and a fifth of that on days off."""

    days: float
    windows: tuple[float, float]
    hours: tuple[float, float]
    floor: float


@dataclass(frozen=True)
class Waves:
    """Orchestrated bursts: a ``share`` of an operator's sessions sent by ``size`` (a range)
    of its live accounts at once, within ``spread_s`` seconds."""

    share: float
    size: tuple[float, float]
    spread_s: float


@dataclass(frozen=True)
class Stream:
    """A kind of request an account sends: units from ``pool``; ``run`` > 0 sends that many
    consecutive units as one burst (a benchmark run, a grading batch)."""

    pool: str
    weight: float
    run: int = 0


@dataclass(frozen=True)
class Pathway:
    share: float
    network: str
    tiers: dict[str, float]


@dataclass(frozen=True, kw_only=True)
class Behavior:
    name: str
    profile: str
    network: str
    client: str
    payment: str
    payment_pooled: int = 1
    payment_share: float = 1.0
    org: str = "own"
    tiers: dict[str, float]
    verified: float
    new_accounts: float
    small_model: float = 0.0
    one_model: bool = False
    image_share: float = 0.0
    active_days: float = 1.0
    adoption: Adoption
    streams: tuple[Stream, ...]
    creation: Creation | None = None
    schedule: Schedule | None = None


@dataclass(frozen=True, kw_only=True)
class Archetype(Behavior):
    """A legitimate kind of customer, in groups (an app, a team, a campus, a company)."""

    groups: int
    min_groups: int = 1
    members: tuple[float, float] = (1.0, 0.0)
    per_day: tuple[float, float]
    forwarded_by: str | None = None     # a campaign that also forwards these users' requests
    forwarded_share: float = 0.0        # ... this share of their sessions
    personal: int = 0                   # each user keeps to this many conversations (0: any)


@dataclass(frozen=True, kw_only=True)
class Campaign(Behavior):
    """One actor's accounts, with the report's volume and account count at scale 1."""

    exchanges: int
    accounts: int
    min_accounts: int = 3
    groups: int = 1
    volume_sigma: float = 0.6
    lockstep: bool = False
    lifetime_days: tuple[float, float] | None = None
    proxy_exits_per_account: float = 20.0
    mix: float = 0.0
    specialize: int = 2
    pathways: tuple[Pathway, ...] = ()
    waves: Waves | None = None
    vendor: float = 0.0       # how concentrated its residential-IP vendor's countries are (0: no)
    clients: int = 3          # ordinary clients its automation passes for, with evasion infra


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    start_ms: int
    days: int
    models: dict[str, str]
    releases: dict[str, int]
    evasion: frozenset[str]
    attack_corpora: dict[str, tuple[str, ...]]
    evasion_mix: float
    legit: tuple[Archetype, ...]
    campaigns: tuple[Campaign, ...] = field(default=())
    paraphrase_strength: float = STRENGTHS[DEFAULT_STRENGTH]

    @property
    def release_ms(self) -> int:
        return self.releases[self.models["new"]]


def list_scenarios() -> list[str]:
    folder = resources.files("distillguard.sim").joinpath(_SCENARIO_DIR)
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir()
                  if p.name.endswith(".yaml"))


def _raw(name_or_path: str, seen: tuple[str, ...] = ()) -> dict[str, Any]:
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        text = path.read_text(encoding="utf-8")
    elif name_or_path in list_scenarios():
        text = resources.files("distillguard.sim").joinpath(
            _SCENARIO_DIR, f"{name_or_path}.yaml").read_text(encoding="utf-8")
    else:
        msg = (f"unknown scenario {name_or_path!r}: use one of {', '.join(list_scenarios())} "
               "or a path to a scenario .yaml file")
        raise InputError(msg)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        msg = f"scenario {name_or_path!r} is not valid YAML: {exc}"
        raise InputError(msg) from exc
    if not isinstance(data, dict):
        msg = f"scenario {name_or_path!r} must be a mapping"
        raise InputError(msg)
    parent = data.pop("extends", None)
    if parent:
        if parent in seen:
            msg = f"scenario {name_or_path!r} extends itself through {parent!r}"
            raise InputError(msg)
        data = {**_raw(parent, (*seen, name_or_path)), **data}
    return data


def _ms(value: Any, where: str) -> int:
    try:
        return int(datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError as exc:
        msg = f"{where} must be an RFC 3339 time, got {value!r}"
        raise InputError(msg) from exc


def _choice(value: Any, options: tuple[str, ...], where: str) -> str:
    if value not in options:
        msg = f"{where} must be one of {', '.join(options)}; got {value!r}"
        raise InputError(msg)
    return str(value)


def _share(value: Any, where: str) -> float:
    if not isinstance(value, int | float) or not 0 <= value <= 1:
        msg = f"{where} must be a number in [0, 1]; got {value!r}"
        raise InputError(msg)
    return float(value)


def _pair(value: Any, where: str) -> tuple[float, float]:
    if not (isinstance(value, list) and len(value) == 2
            and all(isinstance(v, int | float) for v in value)):
        msg = f"{where} must be a pair of numbers; got {value!r}"
        raise InputError(msg)
    return float(value[0]), float(value[1])


def _tiers(value: Any, where: str) -> dict[str, float]:
    if not isinstance(value, dict) or not value or set(value) - ACCOUNT_TIERS:
        msg = f"{where} must map account tiers ({', '.join(sorted(ACCOUNT_TIERS))}) to shares"
        raise InputError(msg)
    return {str(k): float(v) for k, v in value.items()}


def _behavior(name: str, raw: dict[str, Any], where: str) -> dict[str, Any]:
    payment = raw.get("payment", "own")
    pooled = 1
    if isinstance(payment, dict):
        pooled, payment = int(payment.get("pooled", 1)), "pooled"
    adoption = raw.get("adoption") or {}
    streams = raw.get("streams") or []
    if not streams:
        msg = f"{where}.streams must list at least one stream"
        raise InputError(msg)
    return {
        "name": name,
        "profile": _choice(raw.get("profile", "waking"), PROFILES, f"{where}.profile"),
        "network": _choice(raw.get("network", "residential"), NETWORKS, f"{where}.network"),
        "client": _choice(raw.get("client", "consumer"), CLIENTS, f"{where}.client"),
        "payment": _choice(payment, PAYMENTS, f"{where}.payment"),
        "payment_pooled": pooled,
        "payment_share": _share(raw.get("payment_share", 1.0), f"{where}.payment_share"),
        "org": _choice(raw.get("org", "own"), ("own", "group"), f"{where}.org"),
        "tiers": _tiers(raw.get("tiers", {"pro": 1.0}), f"{where}.tiers"),
        "verified": _share(raw.get("verified", 0.5), f"{where}.verified"),
        "new_accounts": _share(raw.get("new_accounts", 0.1), f"{where}.new_accounts"),
        "small_model": _share(raw.get("small_model", 0.0), f"{where}.small_model"),
        "one_model": bool(raw.get("one_model", False)),
        "image_share": _share(raw.get("image_share", 0.0), f"{where}.image_share"),
        "active_days": _share(raw.get("active_days", 1.0), f"{where}.active_days"),
        "adoption": Adoption(
            delay_hours=_pair(adoption.get("delay_hours", [120, 1.0]), f"{where}.adoption"),
            share=_pair(adoption.get("share", [0.2, 0.5]), f"{where}.adoption.share"),
            ramp_hours=float(adoption.get("ramp_hours", 24)),
            coordinated=bool(adoption.get("coordinated", False))),
        "streams": tuple(Stream(str(s["pool"]), float(s["weight"]), int(s.get("run", 0)))
                         for s in streams),
        "creation": _section(raw, "creation", where, _creation),
        "schedule": _section(raw, "schedule", where, _schedule),
    }


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        msg = f"{where} must be a mapping; got {value!r}"
        raise InputError(msg)
    return value


_T = TypeVar("_T")


def _section(raw: dict[str, Any], key: str, where: str,
             build: Callable[[dict[str, Any], str], _T]) -> _T | None:
    """An optional mapping ``key`` of ``raw``, built by ``build`` (None when absent)."""
    value = raw.get(key)
    if value is None:
        return None
    return build(_mapping(value, f"{where}.{key}"), f"{where}.{key}")


def _creation(raw: dict[str, Any], where: str) -> Creation:
    return Creation(batch=max(1.0, float(raw.get("batch", 20))),
                    spread_hours=float(raw.get("spread_hours", 2)))


def _schedule(raw: dict[str, Any], where: str) -> Schedule:
    return Schedule(days=_share(raw.get("days", 1.0), f"{where}.days"),
                    windows=_pair(raw.get("windows", [1, 3]), f"{where}.windows"),
                    hours=_pair(raw.get("hours", [2, 8]), f"{where}.hours"),
                    floor=_share(raw.get("floor", 0.2), f"{where}.floor"))


def _waves(raw: dict[str, Any], where: str) -> Waves:
    return Waves(share=_share(raw.get("share", 0.5), f"{where}.share"),
                 size=_pair(raw.get("size", [5, 20]), f"{where}.size"),
                 spread_s=float(raw.get("spread_s", 60)))


def _archetype(name: str, raw: dict[str, Any]) -> Archetype:
    where = f"legit.{name}"
    forwarded = raw.get("forwarded")
    if forwarded is not None:
        forwarded = _mapping(forwarded, f"{where}.forwarded")
    return Archetype(**_behavior(name, raw, where), groups=int(raw["groups"]),
                     min_groups=int(raw.get("min_groups", 1)),
                     members=_pair(raw.get("members", [1, 0]), f"{where}.members"),
                     per_day=_pair(raw["per_day"], f"{where}.per_day"),
                     forwarded_by=str(forwarded["by"]) if forwarded else None,
                     forwarded_share=_share(forwarded.get("share", 0.5),
                                            f"{where}.forwarded.share") if forwarded else 0.0,
                     personal=int(raw.get("personal", 0)))


def _campaign(name: str, raw: dict[str, Any]) -> Campaign:
    where = f"campaigns.{name}"
    lifetime = raw.get("lifetime_days")
    pathways = tuple(Pathway(float(p["share"]),
                             _choice(p["network"], NETWORKS, f"{where}.pathways.network"),
                             _tiers(p["tiers"], f"{where}.pathways.tiers"))
                     for p in raw.get("pathways") or ())
    return Campaign(**_behavior(name, raw, where), exchanges=int(raw["exchanges"]),
                    accounts=int(raw["accounts"]), min_accounts=int(raw.get("min_accounts", 3)),
                    groups=int(raw.get("groups", 1)),
                    volume_sigma=float(raw.get("volume_sigma", 0.6)),
                    lockstep=bool(raw.get("lockstep", False)),
                    lifetime_days=_pair(lifetime, f"{where}.lifetime_days") if lifetime else None,
                    proxy_exits_per_account=float(raw.get("proxy_exits_per_account", 20)),
                    mix=_share(raw.get("mix", 0.0), f"{where}.mix"),
                    specialize=int(raw.get("specialize", 2)), pathways=pathways,
                    waves=_section(raw, "waves", where, _waves),
                    vendor=float(raw.get("vendor", 0.0)),
                    clients=max(1, int(raw.get("clients", 3))))


def parse_evasion(value: str | list[str] | None) -> frozenset[str]:
    """``"all"``, ``"none"``, or a comma-separated list of knobs."""
    if value is None:
        return frozenset()
    items = [v.strip() for v in (value.split(",") if isinstance(value, str) else value)]
    items = [v for v in items if v]
    if items in (["all"], ["on"]):
        return frozenset(EVASION_KNOBS)
    if items in ([], ["none"], ["off"]):
        return frozenset()
    unknown = sorted(set(items) - set(EVASION_KNOBS))
    if unknown:
        msg = (f"unknown evasion knob(s) {', '.join(unknown)}: use all, none, or a list of "
               f"{', '.join(EVASION_KNOBS)}")
        raise InputError(msg)
    return frozenset(items)


def load_scenario(name_or_path: str = DEFAULT_SCENARIO) -> Scenario:
    raw = _raw(name_or_path)
    try:
        window = raw["window"]
        models = {k: str(v) for k, v in raw["models"].items()}
        releases = {str(k): _ms(v, f"releases.{k}") for k, v in raw["releases"].items()}
        if set(models) != {"small", "old", "new"} or not set(models.values()) <= set(releases):
            msg = "models must name small, old and new models, each listed in releases"
            raise InputError(msg)
        split = raw.get("attack_corpora") or {}
        scenario = Scenario(
            name=str(raw.get("name", name_or_path)), description=str(raw.get("description", "")),
            start_ms=_ms(window["start"], "window.start"), days=int(window["days"]),
            models=models, releases=releases, evasion=parse_evasion(raw.get("evasion")),
            attack_corpora={k: tuple(split.get(k) or ()) for k in ("train", "test")},
            evasion_mix=_share(raw.get("evasion_mix", 0.35), "evasion_mix"),
            paraphrase_strength=parse_strength(raw.get("paraphrase_strength")),
            legit=tuple(_archetype(k, v) for k, v in (raw.get("legit") or {}).items()),
            campaigns=tuple(_campaign(k, v) for k, v in (raw.get("campaigns") or {}).items()))
        names = {c.name for c in scenario.campaigns}
        for a in scenario.legit:
            if a.forwarded_by and names and a.forwarded_by not in names:
                msg = (f"legit.{a.name}.forwarded.by names no campaign of the scenario: "
                       f"{a.forwarded_by!r} (campaigns: {', '.join(sorted(names))})")
                raise InputError(msg)
        return scenario
    except (KeyError, TypeError, ValueError) as exc:
        msg = f"scenario {name_or_path!r} is malformed: {exc!r}"
        raise InputError(msg) from exc
