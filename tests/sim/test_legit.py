"""Legitimate traffic has every hard case a provider sees, so content alone cannot convict."""

from __future__ import annotations

from pathlib import Path

import pytest

from distillguard.corpora import corpus_files, iter_corpus
from distillguard.sim.attack_content import ATTACK_CORPORA
from distillguard.sim.legit_content import LEGIT_CORPORA
from tests.sim.conftest import Simulated

pytestmark = pytest.mark.slow  # whole simulated scenarios

LEGIT = "actor IS NULL"


def test_legitimate_accounts_ask_for_step_by_step_answers_and_grade_with_judges(
        baseline: Simulated) -> None:
    step_by_step = baseline.value(f"""
        SELECT count(DISTINCT account_id) FROM ex WHERE {LEGIT} AND (
          messages[-1].content ILIKE '%step by step%' OR system ILIKE '%step by step%')""")
    judges = baseline.value(f"""
        SELECT count(*) FROM ex WHERE {LEGIT} AND (
          messages[-1].content ILIKE '%impartial judge%' OR system ILIKE '%impartial judge%')""")
    assert step_by_step >= 10
    assert judges >= 500


def test_apps_send_thousands_of_templated_requests_a_day_from_a_few_cloud_ips(
        baseline: Simulated) -> None:
    apps = baseline.rows(f"""
        SELECT account_id, count(*) / 14 per_day, count(DISTINCT ip) ips,
               count(DISTINCT system) systems
        FROM ex WHERE {LEGIT} AND account_tier IN ('team', 'enterprise', 'startup')
        GROUP BY account_id HAVING per_day > 1000""")
    assert apps
    assert all(ips <= 6 and systems <= 1 for _, _, ips, systems in apps)


def test_students_share_a_campus_nat_and_staff_share_org_payment_and_egress(
        baseline: Simulated) -> None:
    campus = baseline.value(f"""
        SELECT max(n) FROM (SELECT ip, count(DISTINCT account_id) n FROM ex
                            WHERE {LEGIT} AND account_tier = 'edu' GROUP BY ip)""")
    assert campus >= 20
    _org, accounts, payments, ips = baseline.rows(f"""
        SELECT org_id, count(DISTINCT account_id) a, count(DISTINCT payment_fingerprint),
               count(DISTINCT ip)
        FROM ex WHERE {LEGIT} AND account_tier IN ('team', 'enterprise')
        GROUP BY org_id ORDER BY a DESC LIMIT 1""")[0]
    assert accounts >= 10 and payments == 1 and ips <= 2


def test_people_send_conversations_turn_by_turn(baseline: Simulated) -> None:
    grows = baseline.value(f"""
        SELECT count(*) FROM (
          SELECT conversation_id, count(*) turns, min(len(messages)) first,
                 max(len(messages)) last
          FROM ex WHERE {LEGIT} AND conversation_id IS NOT NULL GROUP BY conversation_id)
        WHERE turns >= 3 AND first = 1 AND last = 2 * turns - 1""")
    assert grows >= 100
    with_history = baseline.value(f"""
        SELECT avg((len(messages) > 1)::int) FROM ex
        WHERE {LEGIT} AND account_tier IN ('free', 'pro')""")
    assert with_history > 0.4


def test_people_follow_their_own_waking_hours(baseline: Simulated) -> None:
    night, day = baseline.rows(f"""
        SELECT sum((h BETWEEN 7 AND 10)::int), sum((h BETWEEN 19 AND 22)::int) FROM (
          SELECT hour(ts) h FROM ex WHERE {LEGIT} AND country = 'US'
                                      AND account_tier IN ('free', 'pro'))""")[0]
    assert day > 3 * night  # 7-10 UTC is night in the US


def test_legitimate_content_never_comes_from_distillation_pipelines(
        baseline: Simulated, shared_corpora: Path) -> None:
    files = corpus_files(shared_corpora)
    pipelines = {item["prompt"] for name, path in files.items()
                 if name in ATTACK_CORPORA for item in iter_corpus(path)}
    # UltraFeedback's completion pipeline sent ShareGPT users' own prompts: those are both
    people = {m["content"] for name in LEGIT_CORPORA for item in iter_corpus(files[name])
              for m in item.get("messages") or [{"content": item["prompt"]}]}
    pipelines -= people
    prompts = {r[0] for r in baseline.rows(
        f"SELECT DISTINCT messages[-1].content FROM ex WHERE {LEGIT}")}
    assert len(prompts) > 1000
    assert not prompts & pipelines
