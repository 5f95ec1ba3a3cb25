"""Scenarios load from data; bad arguments fail with a clear message; held-out splits."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from distillguard.errors import InputError
from distillguard.sim import (
    EVASION_KNOBS,
    SimOptions,
    list_scenarios,
    load_scenario,
    parse_evasion,
    simulate,
)
from distillguard.sim.attack_content import ATTACK_CORPORA
from distillguard.sim.world import build_world


def test_the_packaged_scenarios_load() -> None:
    assert {"feb2026", "quiet", "evasive"} <= set(list_scenarios())
    report = load_scenario("feb2026")
    campaigns = {c.name: (c.exchanges, c.accounts) for c in report.campaigns}
    the_report = {"reasoning": (150_000, 400), "agentic": (3_400_000, 1_100),
                  "hydra": (13_000_000, 22_500)}
    assert {k: campaigns[k] for k in the_report} == the_report
    assert sum(campaigns[k][1] for k in the_report) == 24_000
    # two more operators run the same public pipelines as the report's
    assert set(campaigns) - set(the_report) == {"datagen", "rewardlab"}
    assert load_scenario("quiet").campaigns == ()
    assert load_scenario("evasive").evasion == frozenset(EVASION_KNOBS)
    assert load_scenario("evasive").legit == report.legit


@pytest.mark.parametrize(("options", "message"), [
    ({"scale": 0}, "--scale must be greater than 0"),
    ({"scale": -1.0}, "--scale must be greater than 0"),
    ({"scenario": "nope"}, "unknown scenario 'nope': use one of"),
    ({"split": "dev"}, "--split must be one of all, train, test"),
    ({"fmt": "csv"}, "--format must be one of parquet, jsonl, both"),
    ({"workers": 0}, "--workers must be at least 1"),
    ({"attack_corpora": ("orca",)}, "unknown attack corpus 'orca'"),
])
def test_bad_arguments_fail_clearly(tmp_path: Path, shared_corpora: Path,
                                    options: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        simulate(SimOptions(out=tmp_path, corpora=shared_corpora, **options),
                 show_progress=False)


def test_unknown_evasion_knob_fails_and_all_means_every_knob() -> None:
    with pytest.raises(InputError, match="unknown evasion knob"):
        parse_evasion("infra,stealth")
    assert parse_evasion("all") == frozenset(EVASION_KNOBS)
    assert parse_evasion("none") == frozenset()
    assert parse_evasion("timing, volume") == {"timing", "volume"}


def test_missing_corpora_are_named(tmp_path: Path, shared_corpora: Path) -> None:
    with pytest.raises(InputError, match="cannot find the prompt corpora"):
        simulate(SimOptions(out=tmp_path / "out", corpora=tmp_path / "nowhere"),
                 show_progress=False)
    partial = tmp_path / "partial"
    partial.mkdir()
    shutil.copy(shared_corpora / "dolly.jsonl.gz", partial)
    with pytest.raises(InputError, match="hh_rlhf"):
        simulate(SimOptions(out=tmp_path / "out", corpora=partial), show_progress=False)


def test_a_malformed_scenario_file_names_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("extends: feb2026\nlegit:\n  chat: {groups: 10, per_day: [1, 1], "
                   "profile: nocturnal, streams: [{pool: chat_hh, weight: 1}]}\n")
    with pytest.raises(InputError, match=r"legit\.chat\.profile must be one of"):
        load_scenario(str(bad))
    loop = tmp_path / "loop.yaml"
    loop.write_text(f"extends: {loop}\n")
    with pytest.raises(InputError, match="extends itself"):
        load_scenario(str(loop))


def _attack_pools(world_pools: dict) -> set[str]:
    return {p for p in world_pools if p in ATTACK_CORPORA}


@pytest.mark.slow
def test_train_and_test_splits_hold_out_pipelines_and_people(tmp_path: Path,
                                                             shared_corpora: Path) -> None:
    scenario = load_scenario("feb2026")
    worlds = {split: build_world(SimOptions(out=tmp_path, scale=0.002, split=split,
                                            corpora=shared_corpora))
              for split in ("train", "test")}
    for split, world in worlds.items():
        assert _attack_pools(world.store.pools) == set(scenario.attack_corpora[split])
    assert not set(scenario.attack_corpora["train"]) & set(scenario.attack_corpora["test"])

    def first_turns(split: str) -> set[str]:
        store = worlds[split].store
        pool = store.pools["chat_hh"]
        return set(store.contents.take(store.msg_start[pool.first]).to_pylist())

    train, test = first_turns("train"), first_turns("test")
    assert len(train) > 1000 and not train & test


@pytest.mark.slow
def test_explicit_attack_corpora_feed_every_campaign(tmp_path: Path,
                                                     shared_corpora: Path) -> None:
    world = build_world(SimOptions(out=tmp_path, scale=0.002, corpora=shared_corpora,
                                   attack_corpora=("ultrafeedback", "magpie")))
    assert _attack_pools(world.store.pools) == {"ultrafeedback", "magpie"}
    used = {world.population.stream_keys[s][0] for s in world.population.streams.ravel()
            if s >= 0}
    assert used & set(ATTACK_CORPORA) == {"ultrafeedback", "magpie"}
    assert world.options.attack_corpora == ("ultrafeedback", "magpie")

