"""An operator shared by two simulations: same pipelines, part of the same infrastructure."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from distillguard.errors import InputError
from distillguard.sim import SimOptions, parse_evasion
from distillguard.sim.world import World, build_world


def _world(corpora: Path, seed: int, operator_seed: int) -> World:
    return build_world(SimOptions(out=Path("unused"), scale=0.003, seed=seed, corpora=corpora,
                                  evasion=parse_evasion("infra,templates"),
                                  shared_operator="agentic", operator_seed=operator_seed))


def _addresses(world: World, actor: str) -> set[str]:
    pop = world.population
    kind = pop.kinds.index(actor)
    ips = pop.ips.ip
    return {ips[int(j)].as_py() for i in np.flatnonzero(pop.kind == kind)
            for j in range(pop.ip_start[i], pop.ip_start[i] + pop.ip_len[i])}


def _pipeline_texts(world: World) -> dict[str, list[str | None]]:
    """The first requests of each re-worded pipeline variant (system prompt and prompt)."""
    store = world.store
    out = {}
    for name, pool in store.pools.items():
        if "~" in name:
            entries = pool.first[:20]
            prompts = [m[-1]["content"] for m in store.messages(entries).to_pylist()]
            out[name] = store.system(entries).to_pylist() + prompts
    return out


@pytest.fixture(scope="module")
def worlds(shared_corpora: Path) -> dict[str, World]:
    return {"a": _world(shared_corpora, 1, 7), "b": _world(shared_corpora, 2, 7)}


def test_the_shared_operator_reuses_part_of_its_infrastructure(worlds: dict[str, World]) -> None:
    a, b = _addresses(worlds["a"], "agentic"), _addresses(worlds["b"], "agentic")
    assert a & b and a - b and b - a
    # the other campaigns are each provider's own
    assert not _addresses(worlds["a"], "hydra") & _addresses(worlds["b"], "hydra")


def test_the_shared_operator_sends_the_same_pipelines(worlds: dict[str, World]) -> None:
    texts = _pipeline_texts(worlds["a"])
    assert texts and texts == _pipeline_texts(worlds["b"])


def test_accounts_stay_the_providers_own(worlds: dict[str, World]) -> None:
    ids = {name: set(w.population.account_id.to_pylist()) for name, w in worlds.items()}
    assert not ids["a"] & ids["b"]


def test_unknown_operator_campaign_is_refused(shared_corpora: Path) -> None:
    with pytest.raises(InputError, match="no campaign of scenario"):
        build_world(SimOptions(out=Path("unused"), scale=0.003, corpora=shared_corpora,
                               shared_operator="nobody"))
