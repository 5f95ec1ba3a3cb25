"""Campaigns follow the report: volumes and accounts by scale, shared infrastructure, pivots."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from distillguard.sim import SimOptions, load_scenario
from distillguard.sim.attack_content import ATTACK_CORPORA
from distillguard.sim.world import build_world
from tests.sim.conftest import Simulated

pytestmark = pytest.mark.slow  # whole simulated scenarios

RELEASE = "TIMESTAMPTZ '2026-03-02 16:00:00+00'"
REPORT = {c.name: c for c in load_scenario("feb2026").campaigns}


@pytest.mark.parametrize("scale", [0.004, 0.03])
def test_campaign_accounts_and_planned_volume_follow_the_scale(tmp_path: Path,
                                                               shared_corpora: Path,
                                                               scale: float) -> None:
    world = build_world(SimOptions(out=tmp_path, scale=scale, seed=2, corpora=shared_corpora))
    pop = world.population
    for k, name in enumerate(pop.kinds):
        if name not in REPORT:
            continue
        spec = REPORT[name]
        sel = pop.kind == k
        assert sel.sum() == max(spec.min_accounts, round(spec.accounts * scale))
        assert pop.expected[sel].sum() == pytest.approx(spec.exchanges * scale, rel=1e-6)
        per_account = pop.expected[sel]
        assert per_account.std() > 0.2 * per_account.mean()  # volumes vary between accounts


def test_written_campaign_volumes_match_the_report_at_scale(baseline: Simulated) -> None:
    by_kind = {r["kind"]: r for r in baseline.report.by_kind}
    scale = baseline.report.scale
    for name, spec in REPORT.items():
        planned = spec.exchanges * scale
        # requests sent in waves come in clumps: the count varies as sqrt(clump / planned)
        clump = 1 + (spec.waves.share * float(np.mean(spec.waves.size)) if spec.waves else 0)
        tolerance = 0.1 if planned < 5_000 else max(0.03, 4 * (clump / planned) ** 0.5)
        assert by_kind[name]["exchanges"] == pytest.approx(planned, rel=tolerance), name
        assert by_kind[name]["accounts"] == max(spec.min_accounts, round(spec.accounts * scale))
    legit = sum(r["exchanges"] for r in baseline.report.by_kind if r["actor"] is None)
    assert legit > 0.3 * baseline.report.exchanges


def _pivot(sim: Simulated, where: str) -> float:
    return float(sim.value(f"""
        SELECT avg((model = 'model-b2')::int) FROM ex
        WHERE {where} AND ts >= {RELEASE} AND ts < {RELEASE} + INTERVAL 24 HOUR"""))


def test_hydra_moves_about_half_its_traffic_to_the_new_model_within_a_day(
        baseline: Simulated) -> None:
    assert 0.35 <= _pivot(baseline, "actor = 'hydra'") <= 0.6
    assert _pivot(baseline, "actor = 'agentic'") >= 0.5
    assert _pivot(baseline, "actor IS NULL") <= 0.15


def test_campaigns_share_payment_methods_and_infrastructure(baseline: Simulated) -> None:
    for actor in ("reasoning", "agentic", "hydra"):
        accounts, payments = baseline.rows(f"""
            SELECT count(DISTINCT account_id), count(DISTINCT payment_fingerprint)
            FROM ex WHERE actor = '{actor}'""")[0]
        assert payments <= accounts / 2, actor
    shared_ip_share = baseline.value("""
        SELECT avg((n > 1)::int) FROM (
          SELECT ip, count(DISTINCT account_id) n FROM ex WHERE actor = 'hydra' GROUP BY ip)""")
    assert shared_ip_share > 0.8
    # each group runs one custom client that no legitimate account uses
    overlap = baseline.value("""
        SELECT count(*) FROM (SELECT DISTINCT client_fingerprint FROM ex WHERE actor = 'hydra')
        JOIN (SELECT DISTINCT client_fingerprint FROM ex WHERE actor IS NULL) USING
        (client_fingerprint)""")
    assert overlap == 0


def _lockstep_share(sim: Simulated) -> float:
    """Share of reasoning exchanges with another reasoning account's within 1.5 s."""
    return float(sim.value("""
        WITH r AS (SELECT account_id, epoch_ms(ts) t FROM ex WHERE actor = 'reasoning'),
        o AS (SELECT account_id, t, lag(t) OVER w prev_t, lag(account_id) OVER w prev_a,
                     lead(t) OVER w next_t, lead(account_id) OVER w next_a
              FROM r WINDOW w AS (ORDER BY t, account_id))
        SELECT avg(((t - prev_t <= 1500 AND prev_a <> account_id)
                    OR (next_t - t <= 1500 AND next_a <> account_id))::int) FROM o"""))


def test_reasoning_accounts_send_in_lockstep_unless_timing_evades(baseline: Simulated,
                                                                  evaded: Simulated) -> None:
    assert _lockstep_share(baseline) > 0.6
    assert _lockstep_share(evaded) < 0.1


def test_a_campaign_account_targets_few_capabilities(tmp_path: Path,
                                                     shared_corpora: Path) -> None:
    pop = build_world(SimOptions(out=tmp_path, scale=0.01, seed=2,
                                 corpora=shared_corpora)).population
    corpus = np.array([p in ATTACK_CORPORA for p, _ in pop.stream_keys])
    hydra = np.flatnonzero(pop.kind == pop.kinds.index("hydra"))
    streams = pop.streams[hydra]
    per_account = ((streams >= 0) & corpus[np.maximum(streams, 0)]).sum(axis=1)
    assert per_account.max() <= REPORT["hydra"].specialize
    used = {pop.stream_keys[s][0] for s in np.unique(streams[streams >= 0])}
    assert len(used & set(ATTACK_CORPORA)) >= 4  # the network as a whole covers many
