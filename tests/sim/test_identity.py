"""Nothing but behaviour tells an attack account from a legitimate one: no id artifacts."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from distillguard.logs.schema import SPEC_FIELDS
from tests.sim.conftest import Simulated

pytestmark = pytest.mark.slow  # whole simulated scenarios

ID_COLUMNS = ("account_id", "org_id", "api_key_id", "payment_fingerprint", "request_id",
              "conversation_id", "client_fingerprint")


def _shapes(sim: Simulated, column: str, attack: bool) -> set[tuple]:
    who = "actor IS NOT NULL" if attack else "actor IS NULL"
    pattern = ("^t13d[0-9]{4}h2_[0-9a-f]{12}_[0-9a-f]{12}$" if column == "client_fingerprint"
               else "^[a-z]+_[0-9a-f]+$")
    return set(sim.rows(f"""
        SELECT DISTINCT length({column}), regexp_extract({column}, '^[a-z]+'),
               regexp_full_match({column}, '{pattern}')
        FROM ex WHERE {who} AND {column} IS NOT NULL"""))


def test_ids_of_attack_and_legitimate_accounts_have_the_same_shape(baseline: Simulated,
                                                                   evaded: Simulated) -> None:
    for sim in (baseline, evaded):
        for column in ID_COLUMNS:
            attack, legit = _shapes(sim, column, True), _shapes(sim, column, False)
            assert len(legit) == 1, column
            # without evasion attackers use SDKs only, which send no conversation id
            assert attack == legit or (column == "conversation_id" and not attack), column


def test_no_id_names_an_actor_or_counts_up(baseline: Simulated) -> None:
    for column in ID_COLUMNS:
        named = baseline.value(f"""SELECT count(*) FROM ex WHERE regexp_matches({column},
            '(?i)hydra|agentic|reasoning|attack|legit|campaign|actor')""")
        assert named == 0, column
    # attack accounts are spread evenly through the sorted account ids
    rank = baseline.value("""
        SELECT avg(r) FROM (SELECT actor, percent_rank() OVER (ORDER BY account_id) r
                            FROM (SELECT DISTINCT account_id, actor FROM ex))
        WHERE actor IS NOT NULL""")
    assert 0.4 < rank < 0.6


def test_request_ids_are_unique(baseline: Simulated) -> None:
    assert baseline.value("SELECT count(*) - count(DISTINCT request_id) FROM ex") == 0


def test_exchanges_carry_only_the_spec_fields(baseline: Simulated) -> None:
    for path in (baseline.out / "exchanges").glob("*.parquet"):
        assert pq.read_schema(path).names == [f.name for f in SPEC_FIELDS]
