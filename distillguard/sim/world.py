"""Everything a simulation is made of before the first exchange: options checked, scenario
loaded, content store filled from the corpora, accounts built, window cut into slices."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from distillguard.corpora import find_corpora_dir
from distillguard.errors import InputError
from distillguard.sim.accounts import BuildContext
from distillguard.sim.attack_content import add_attack_pools
from distillguard.sim.campaigns import campaign_block
from distillguard.sim.clients import Clients
from distillguard.sim.content import ContentStore, StoreBuilder
from distillguard.sim.legit_content import (
    add_legit_pools,
    load_legit_corpora,
    public_judge_templates,
)
from distillguard.sim.legit_population import legit_block
from distillguard.sim.networks import Networks
from distillguard.sim.operator import SharedOperator
from distillguard.sim.paraphrase import Paraphraser, load_vocabulary, parse_strength
from distillguard.sim.population import (
    AccountBlock,
    Lockstep,
    Population,
    StreamTable,
    assemble_population,
)
from distillguard.sim.scenario import DEFAULT_SCENARIO, SPLITS, Scenario, load_scenario
from distillguard.sim.templates import load_templates
from distillguard.sim.timing import HOUR_MS, hour_of_week_offset
from distillguard.sim.writer import FORMATS

__all__ = ["SimOptions", "World", "attack_corpora_for", "build_world", "plan_slices"]

TARGET_SLICE_ROWS = 150_000
SLICE_HOURS = (24, 12, 6, 4, 2, 1)
STYLES = 16     # re-worded variants per corpus with the ``templates`` knob


@dataclass(frozen=True)
class SimOptions:
    out: Path
    scenario: str = DEFAULT_SCENARIO
    scale: float = 0.01
    seed: int = 1
    evasion: frozenset[str] | None = None     # None: the scenario's default
    split: str = "all"
    attack_corpora: tuple[str, ...] | None = None
    fmt: str = "parquet"
    workers: int = 2
    corpora: Path | None = None
    paraphrase_strength: str | float | None = None    # None: the scenario's
    # one campaign run by an operator shared with other simulations (``sim.operator``)
    shared_operator: str | None = None
    operator_seed: int = 0
    operator_infra_share: float = 0.5


@dataclass
class World:
    scenario: Scenario
    store: ContentStore
    population: Population
    options: SimOptions
    slices: list[np.ndarray]
    parts: list[list[int]]
    paraphraser: Paraphraser | None = None


def _check(options: SimOptions) -> None:
    if not options.scale > 0:
        msg = f"--scale must be greater than 0, got {options.scale}"
        raise InputError(msg)
    if options.split not in SPLITS:
        msg = f"--split must be one of {', '.join(SPLITS)}, got {options.split!r}"
        raise InputError(msg)
    if options.fmt not in FORMATS:
        msg = f"--format must be one of {', '.join(FORMATS)}, got {options.fmt!r}"
        raise InputError(msg)
    if options.workers < 1:
        msg = f"--workers must be at least 1, got {options.workers}"
        raise InputError(msg)
    if options.paraphrase_strength is not None:
        parse_strength(options.paraphrase_strength)


def attack_corpora_for(scenario: Scenario, split: str,
                       explicit: tuple[str, ...] | None) -> list[str]:
    if explicit:
        return list(dict.fromkeys(explicit))
    if split == "all":
        return list(dict.fromkeys(scenario.attack_corpora["train"]
                                  + scenario.attack_corpora["test"]))
    return list(scenario.attack_corpora[split])


def build_world(options: SimOptions) -> World:
    """Load the scenario and corpora, build the content store and the population."""
    _check(options)
    scenario = load_scenario(options.scenario)
    evasion = scenario.evasion if options.evasion is None else options.evasion
    corpora_dir = find_corpora_dir(options.corpora)
    rng = np.random.default_rng([options.seed, 1])
    templates = load_templates()
    builder = StoreBuilder()
    names = attack_corpora_for(scenario, options.split, options.attack_corpora)
    add_legit_pools(builder, load_legit_corpora(corpora_dir, options.split), templates, rng,
                    public_judges=public_judge_templates(corpora_dir, names))
    styles = STYLES if "templates" in evasion else 0
    operator = _shared_operator(options, scenario)
    recurring: frozenset[str] = frozenset()
    if scenario.campaigns:
        recurring = add_attack_pools(builder, corpora_dir, names, styles=styles,
                                     rng=operator.pipelines_rng() if operator else rng)
    store = builder.build()
    del builder

    how0 = hour_of_week_offset(scenario.start_ms)
    ctx = BuildContext(rng=np.random.default_rng([options.seed, 2]),
                       networks=Networks(np.random.default_rng([options.seed, 3])),
                       clients=Clients(np.random.default_rng([options.seed, 4])),
                       streams=StreamTable(), store=store, start_ms=scenario.start_ms,
                       days=scenario.days,
                       release_hour=(scenario.release_ms - scenario.start_ms) / HOUR_MS)
    blocks: list[AccountBlock] = []
    lockstep: list[list[Lockstep]] = []
    kinds: list[str] = []
    actors: list[str | None] = []
    for spec in scenario.legit:
        blocks.append(legit_block(spec, len(kinds), options.scale, ctx, templates))
        lockstep.append([])
        kinds.append(spec.name)
        actors.append(None)
    for camp in scenario.campaigns:
        block, groups = campaign_block(
            camp, len(kinds), options.scale, evasion, scenario.evasion_mix, styles, ctx,
            operator if operator is not None and operator.campaign == camp.name else None)
        blocks.append(block)
        lockstep.append(groups)
        kinds.append(camp.name)
        actors.append(camp.name)
    population = assemble_population(blocks, lockstep, kinds, actors, ctx.streams, store,
                                     ctx.networks.table(), ctx.clients.table(), how0,
                                     np.random.default_rng([options.seed, 5]), ctx.calendars)
    slices, parts = plan_slices(scenario.days, float(population.expected.sum()))
    strength = scenario.paraphrase_strength if options.paraphrase_strength is None \
        else parse_strength(options.paraphrase_strength)
    paraphraser = None
    if "paraphrase" in evasion and scenario.campaigns:
        side = None if options.split == "all" else options.split
        paraphraser = Paraphraser(load_vocabulary(side), strength, recurring)
    options = SimOptions(**{**options.__dict__, "evasion": evasion,
                            "attack_corpora": tuple(names) if scenario.campaigns else (),
                            "paraphrase_strength": strength if paraphraser else None})
    return World(scenario, store, population, options, slices, parts, paraphraser)


def _shared_operator(options: SimOptions, scenario: Scenario) -> SharedOperator | None:
    if options.shared_operator is None:
        return None
    names = [c.name for c in scenario.campaigns]
    if options.shared_operator not in names:
        msg = (f"--shared-operator {options.shared_operator!r} is no campaign of scenario "
               f"{scenario.name} (its campaigns: {', '.join(names) or 'none'})")
        raise InputError(msg)
    return SharedOperator(options.shared_operator, options.operator_seed,
                          options.operator_infra_share)


def plan_slices(days: int, expected_rows: float) -> tuple[list[np.ndarray], list[list[int]]]:
    """Window hours per slice (1 to 24, about ``TARGET_SLICE_ROWS`` exchanges each, with
    room for peaks) and slice indices per part (one part per day)."""
    per_hour = expected_rows / (days * 24)
    hours = next((h for h in SLICE_HOURS if per_hour * h * 1.5 <= TARGET_SLICE_ROWS), 1)
    slices = [np.arange(s, s + hours) for s in range(0, days * 24, hours)]
    per_day = 24 // hours
    parts = [list(range(d * per_day, (d + 1) * per_day)) for d in range(days)]
    return slices, parts


