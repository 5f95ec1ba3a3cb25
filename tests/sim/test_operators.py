"""Operators who run the same public pipelines stay distinct operators, each coherent in its
own accounts, infrastructure, timing and model pivots, whatever it evades."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from distillguard.sim import SimOptions, load_scenario, parse_evasion
from distillguard.sim.world import build_world
from tests.sim.conftest import Simulated

SPECS = {c.name: c for c in load_scenario("feb2026").campaigns}
NEW = ("datagen", "rewardlab")
RELEASE = "TIMESTAMPTZ '2026-03-02 16:00:00+00'"


def _shared_template_lines(sim: Simulated) -> dict[int, int]:
    """Lines of 40+ characters of pipeline requests, by how many operators send them."""
    return dict(sim.rows("""
        WITH l AS (SELECT DISTINCT actor, unnest(string_split(messages[1].content, chr(10))) line
                   FROM (SELECT * FROM ex WHERE actor IS NOT NULL AND response IS NULL)
                   USING SAMPLE 30000 ROWS)
        SELECT n, count(*) FROM (SELECT line, count(DISTINCT actor) n FROM l
                                 WHERE length(line) >= 40 GROUP BY line) GROUP BY n"""))


def test_operators_send_the_same_public_templates(baseline: Simulated) -> None:
    by_operators = _shared_template_lines(baseline)
    assert sum(n for k, n in by_operators.items() if k >= 3) >= 20
    both = baseline.value("""
        WITH l AS (SELECT DISTINCT actor, unnest(string_split(messages[1].content, chr(10))) line
                   FROM ex WHERE actor IN ('datagen', 'rewardlab'))
        SELECT count(*) FROM (SELECT line FROM l WHERE length(line) >= 40 GROUP BY line
                              HAVING count(DISTINCT actor) = 2)""")
    assert both >= 10



def test_evaluation_teams_run_the_public_judge_prompts_operators_send(baseline: Simulated) -> None:
    teams, lines = baseline.rows("""
        WITH l AS (SELECT DISTINCT account_id, archetype, actor,
                          unnest(string_split(messages[1].content, chr(10))) line
                   FROM ex WHERE archetype = 'judge' OR actor IS NOT NULL),
             j AS (SELECT DISTINCT account_id, line FROM l
                   WHERE archetype = 'judge' AND length(line) >= 40),
             a AS (SELECT DISTINCT line FROM l WHERE actor IS NOT NULL AND length(line) >= 40)
        SELECT count(DISTINCT j.account_id), count(DISTINCT j.line) FROM j JOIN a USING (line)""")[0]
    all_teams = baseline.value("SELECT count(*) FROM labels WHERE archetype = 'judge'")
    assert all_teams >= 3
    assert teams >= 0.8 * all_teams
    assert lines >= 20


def test_the_reseller_forwards_requests_its_people_also_send_from_their_own_accounts(
        baseline: Simulated) -> None:
    people, overlapping = baseline.rows("""
        WITH r AS (SELECT account_id, messages[1].content c FROM ex WHERE archetype = 'resale'),
             h AS (SELECT DISTINCT messages[1].content c FROM ex WHERE actor = 'hydra')
        SELECT (SELECT count(DISTINCT account_id) FROM r), count(DISTINCT r.account_id)
        FROM r JOIN h USING (c)""")[0]
    assert people >= 10
    assert overlapping > 0.5 * people
    small = baseline.value("""SELECT quantile_cont(n, 0.5) FROM (SELECT count(*) n FROM ex
                               WHERE archetype = 'resale' GROUP BY account_id)""")
    assert small <= 15   # a handful of requests each: thin evidence of their own

RECENT = "account_created >= TIMESTAMPTZ '2026-01-01 00:00:00+00'"   # opened for the job


def _opened_near(sim: Simulated, hours: float) -> dict[str, float]:
    """Per operator: share of its recently opened accounts opened within ``hours`` of another
    of its accounts."""
    return dict(sim.rows(f"""
        WITH a AS (SELECT DISTINCT account_id, actor, epoch_ms(account_created) c
                   FROM ex WHERE actor IS NOT NULL AND {RECENT})
        SELECT actor, avg(near::int) FROM (
          SELECT a.account_id, a.actor, bool_or(b.account_id IS NOT NULL) near
          FROM a LEFT JOIN a b ON a.actor = b.actor AND a.account_id <> b.account_id
                              AND abs(a.c - b.c) <= {hours * 3_600_000}
          GROUP BY 1, 2) GROUP BY 1"""))


def test_an_operator_opens_its_accounts_in_batches_even_when_it_evades(
        baseline: Simulated, evaded: Simulated) -> None:
    plain, evading = _opened_near(baseline, 2), _opened_near(evaded, 24)
    for name in ("hydra", *NEW):
        assert plain[name] > 0.6, name
        assert evading[name] > 0.5, name
    chat = baseline.value(f"""
        WITH a AS (SELECT DISTINCT account_id, epoch_ms(account_created) c FROM ex
                   WHERE actor IS NULL AND account_tier = 'free' AND {RECENT})
        SELECT avg(near::int) FROM (SELECT a.account_id, bool_or(b.account_id IS NOT NULL) near
          FROM a LEFT JOIN a b ON a.account_id <> b.account_id AND abs(a.c - b.c) <= 7200000
          GROUP BY 1)""")
    assert chat < min(plain[name] for name in NEW)


def _burstiness(sim: Simulated, actor: str, seconds: int) -> float:
    """Index of dispersion of an operator's requests per ``seconds`` bin within each busy hour
    (variance over mean: about 1 when requests come one by one, the wave size in waves)."""
    ts = np.array([r[0] for r in sim.rows(
        f"SELECT epoch_ms(ts) FROM ex WHERE actor = '{actor}' ORDER BY ts")], dtype=np.int64)
    bins = 3_600 // seconds
    hour, slot = ts // 3_600_000, (ts % 3_600_000) // (seconds * 1000)
    ratios, weights = [], []
    for h in np.unique(hour):
        counts = np.bincount(slot[hour == h], minlength=bins)
        if counts.sum() >= 20:
            ratios.append(counts.var() / counts.mean())
            weights.append(counts.sum())
    return float(np.average(ratios, weights=weights))


def test_operators_send_waves_unless_they_evade_on_timing(baseline: Simulated,
                                                          evaded: Simulated) -> None:
    # at scale 0.01 an operator has 6-8 accounts, so a wave is only the 2-3 of them live at
    # its hour and only each session's first request lands in it: bursts stay modest
    for name in NEW:
        spread = int(SPECS[name].waves.spread_s)
        plain, evading = _burstiness(baseline, name, spread), _burstiness(evaded, name, spread)
        assert plain > 1.5 and evading < 1.3 and plain > 1.5 * evading, (name, plain, evading)


def test_operators_keep_their_own_tiers_schedule_and_pivot(baseline: Simulated) -> None:
    tiers = dict(baseline.rows("""SELECT actor, list(DISTINCT account_tier) FROM ex
                                   WHERE actor IN ('datagen', 'rewardlab') GROUP BY 1"""))
    for name in NEW:
        assert set(tiers[name]) <= set(SPECS[name].tiers), name
    assert not set(tiers["datagen"]) & set(tiers["rewardlab"])
    # jobs on a schedule: days with little traffic, unlike the round-the-clock reseller
    spread = dict(baseline.rows("""
        SELECT actor, max(n) / min(n) FROM (SELECT actor, date_trunc('day', ts) d, count(*) n
            FROM ex WHERE actor IN ('hydra', 'datagen', 'rewardlab')
            AND ts < TIMESTAMPTZ '2026-03-09 00:00:00+00' GROUP BY 1, 2) GROUP BY 1"""))
    assert min(spread["datagen"], spread["rewardlab"]) > 2 * spread["hydra"]
    pivot = dict(baseline.rows(f"""
        SELECT actor, avg((model = 'model-b2')::int) FROM ex WHERE actor IS NOT NULL
        AND ts >= {RELEASE} + INTERVAL 2 DAY GROUP BY 1"""))
    assert pivot["rewardlab"] < 0.05 < pivot["datagen"]


def test_with_evasion_infra_an_operator_passes_for_a_few_ordinary_clients(
        evaded: Simulated) -> None:
    clients = dict(evaded.rows("""
        SELECT actor, count(DISTINCT client_fingerprint) FROM ex WHERE actor IS NOT NULL
        GROUP BY 1"""))
    for name, n in clients.items():
        assert n <= SPECS[name].clients, name
    unusual = evaded.value("""
        SELECT count(DISTINCT client_fingerprint) FROM ex WHERE actor IS NOT NULL
        AND client_fingerprint NOT IN (SELECT client_fingerprint FROM ex WHERE actor IS NULL)""")
    assert unusual == 0


def test_waves_and_schedules_follow_the_evasion_knobs(tmp_path: Path, shared_corpora: Path) -> None:
    def world(evasion: str) -> object:
        return build_world(SimOptions(out=tmp_path, scale=0.01, seed=4, corpora=shared_corpora,
                                      evasion=parse_evasion(evasion))).population

    plain, timing = world("none"), world("timing")
    waves = {plain.kinds[plain.kind[g.members[0]]] for g in plain.lockstep if g.wave}
    assert waves == {name for name, c in SPECS.items() if c.waves}
    assert not any(g.wave for g in timing.lockstep)
    for name in NEW:   # one schedule per operator, shared by all its accounts
        members = plain.kind == plain.kinds.index(name)
        assert len(np.unique(plain.calendar[members])) == 1
        assert plain.calendar[members][0] > 0
        assert np.isin(timing.calendar[timing.kind == timing.kinds.index(name)], 0).sum() == 0
