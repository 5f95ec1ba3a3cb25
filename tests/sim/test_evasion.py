"""Each evasion knob removes what it should, and only that."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from distillguard.corpora import corpus_files, iter_corpus
from distillguard.sim import SimOptions, parse_evasion
from distillguard.sim.attack_content import ATTACK_CORPORA
from distillguard.sim.population import Population
from distillguard.sim.world import build_world
from tests.sim.conftest import Simulated

pytestmark = pytest.mark.slow  # whole simulated scenarios


def _accounts_sharing_an_ip(sim: Simulated) -> float:
    return float(sim.value("""
        WITH a AS (SELECT DISTINCT account_id, ip FROM ex WHERE actor IS NOT NULL),
        shared AS (SELECT ip FROM a GROUP BY ip HAVING count(*) > 1)
        SELECT count(DISTINCT account_id) / (SELECT count(DISTINCT account_id) FROM a)
        FROM a JOIN shared USING (ip)"""))


def test_infra_gives_every_attack_account_its_own_ips_payment_and_an_ordinary_client(
        baseline: Simulated, evaded: Simulated) -> None:
    assert _accounts_sharing_an_ip(baseline) > 0.9
    assert _accounts_sharing_an_ip(evaded) < 0.05
    shared_payments = """
        SELECT count(*) FROM (SELECT payment_fingerprint FROM ex WHERE actor IS NOT NULL
                              AND payment_fingerprint IS NOT NULL
                              GROUP BY 1 HAVING count(DISTINCT account_id) > 1)"""
    assert baseline.value(shared_payments) > 0
    assert evaded.value(shared_payments) == 0
    rare_clients = """
        SELECT count(DISTINCT client_fingerprint) FROM ex WHERE actor IS NOT NULL
        AND client_fingerprint NOT IN (SELECT client_fingerprint FROM ex WHERE actor IS NULL)"""
    assert baseline.value(rare_clients) > 0
    assert evaded.value(rare_clients) == 0


def _hour_peak_to_trough(sim: Simulated, actor: str) -> float:
    return float(sim.value(f"""
        SELECT max(c) / min(c) FROM (SELECT hour(ts) h, count(*) c FROM ex
                                     WHERE actor = '{actor}' GROUP BY h)"""))


def test_timing_moves_campaigns_from_round_the_clock_to_waking_hours(
        baseline: Simulated, evaded: Simulated) -> None:
    for actor in ("agentic", "hydra"):
        assert _hour_peak_to_trough(baseline, actor) < 1.4
        assert _hour_peak_to_trough(evaded, actor) > 1.7


def _volume_spread(sim: Simulated) -> tuple[float, float]:
    row = sim.rows("""
        SELECT max(n) / median(n), avg(n_days) FROM (
          SELECT account_id, count(*) n, count(DISTINCT date_trunc('day', ts)) n_days
          FROM ex WHERE actor = 'hydra' GROUP BY account_id)""")[0]
    return float(row[0]), float(row[1])


def test_volume_spreads_each_account_thin_over_the_whole_window(baseline: Simulated,
                                                                evaded: Simulated) -> None:
    spread, days = _volume_spread(baseline)
    spread_evading, days_evading = _volume_spread(evaded)
    assert spread_evading < spread / 2
    assert days_evading > days + 3


def _ordinary_share(sim: Simulated, actor: str) -> float:
    # the chat corpora carry the assistant's answers; the pipelines' corpora do not
    return float(sim.value(f"SELECT avg((response IS NOT NULL)::int) FROM ex "
                           f"WHERE actor = '{actor}' AND status = 200"))


def test_mixing_raises_the_share_of_ordinary_chat_in_attack_accounts(
        baseline: Simulated, evaded: Simulated) -> None:
    assert _ordinary_share(baseline, "hydra") < 0.25
    assert _ordinary_share(evaded, "hydra") > 0.3
    assert _ordinary_share(evaded, "agentic") > 0.3


def test_templates_rewords_pipeline_prompts(baseline: Simulated, evaded: Simulated,
                                            shared_corpora: Path) -> None:
    verbatim = {item["prompt"] for name, path in corpus_files(shared_corpora).items()
                if name in ATTACK_CORPORA for item in iter_corpus(path)}
    query = """SELECT messages[1].content FROM ex WHERE actor IS NOT NULL
               AND len(messages) = 1 AND response IS NULL USING SAMPLE 5000 ROWS"""

    def share(sim: Simulated) -> float:
        prompts = [r[0] for r in sim.rows(query)]
        return sum(p in verbatim for p in prompts) / len(prompts)

    assert share(baseline) > 0.99
    assert share(evaded) < 0.5


def _repeated_long_lines(sim: Simulated) -> float:
    """Share of the 40+ character lines of sampled pipeline requests that more than one
    request sends (code and data lines included: the paraphraser keeps those)."""
    return float(sim.value("""
        WITH s AS (SELECT request_id, messages[1].content c FROM ex
                   WHERE actor IN ('datagen', 'rewardlab', 'agentic') USING SAMPLE 20000 ROWS),
             l AS (SELECT DISTINCT request_id, unnest(string_split(c, chr(10))) line FROM s)
        SELECT avg((n > 1)::int) FROM (SELECT line, count(*) n FROM l
                                      WHERE length(line) >= 40 GROUP BY line)"""))


def test_paraphrase_leaves_few_long_lines_repeated_across_requests(baseline: Simulated,
                                                                   evaded: Simulated) -> None:
    plain, reworded = _repeated_long_lines(baseline), _repeated_long_lines(evaded)
    assert reworded < 0.5 * plain, (plain, reworded)


def test_one_knob_changes_only_its_own_part(tmp_path: Path, shared_corpora: Path) -> None:
    def world(evasion: str) -> Population:
        return build_world(SimOptions(out=tmp_path, scale=0.01, seed=4, corpora=shared_corpora,
                                      evasion=parse_evasion(evasion))).population

    plain, infra = world("none"), world("infra")
    attack = np.array([plain.actors[k] is not None for k in plain.kind])
    assert plain.ip_rotates[attack].any() and not infra.ip_rotates[attack].any()
    assert len(infra.lockstep) == len(plain.lockstep) > 0  # timing untouched
    np.testing.assert_array_equal(plain.profile, infra.profile)
    assert world("timing").lockstep == []
