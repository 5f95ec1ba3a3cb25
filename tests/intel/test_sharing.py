"""Two providers whose agentic campaign is one operator: A exports, B scans with A's intel.

Bars: B finds the operator's campaign with at least as many accounts as without
the intel, earlier in its traffic, and lists no legitimate account more.
(``benchmarks/intel_sharing.py`` sweeps finer cut points; this checks two early cuts
and the whole traffic: at every one intel is no worse, at one at least it is better.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from distillguard.engines.scan_job import ScanJob, run_scan_job
from distillguard.evaluate import actor_listing, first_exchanges, read_labels
from distillguard.intel import IndicatorMatcher, IntelConfig, findings_to_bundle, parse_bundle
from tests.intel.conftest import SECRET

EARLY = 1_500
CUTS = (500, EARLY, 0)


@pytest.fixture(scope="module")
def b_scans(providers: dict[str, Any], tmp_path_factory: pytest.TempPathFactory,
            ) -> dict[tuple[str, int], dict[str, Any]]:
    config = IntelConfig(producer="Lab A", secret=SECRET)
    received = parse_bundle(findings_to_bundle(providers["findings"], config).serialize()
                            .encode(), source="Lab A")
    labels, _ = read_labels(providers["b"] / "labels.jsonl")
    folder = tmp_path_factory.mktemp("b-cuts")
    out: dict[tuple[str, int], dict[str, Any]] = {}
    for n in CUTS:
        log = folder / f"first-{n}.parquet"
        first_exchanges(providers["b"] / "exchanges", n, log)
        for mode, matcher in (("without", None), ("with", IndicatorMatcher(received))):
            findings, _ = run_scan_job(ScanJob([log], None, folder / f"{mode}-{n}.json",
                                               releases=providers["b"] / "releases.json",
                                               intel=matcher))
            out[(mode, n)] = {"findings": findings,
                              "listing": actor_listing(findings, labels, "agentic")}
    return out


@pytest.mark.parametrize("cut", CUTS, ids=["first-500", "first-1500", "all"])
def test_intel_finds_at_least_as_many_operator_accounts_and_no_more_legit(
        b_scans: dict, cut: int) -> None:
    without, with_intel = b_scans[("without", cut)]["listing"], b_scans[("with", cut)]["listing"]
    assert with_intel["extraction"] >= without["extraction"]
    assert with_intel["listed"] >= without["listed"]
    assert with_intel["legit_extraction"] <= without["legit_extraction"]
    assert with_intel["legit_listed"] <= without["legit_listed"]


def test_intel_finds_the_operator_earlier(b_scans: dict) -> None:
    assert b_scans[("with", EARLY)]["listing"]["found"]
    assert b_scans[("with", 0)]["listing"]["found"] and b_scans[("without", 0)]["listing"]["found"]
    gained = [n for n in CUTS if b_scans[("with", n)]["listing"]["extraction"]
              > b_scans[("without", n)]["listing"]["extraction"]]
    assert gained, "at no cut did the partner's intel find more of the operator's accounts"


def test_reasons_name_the_partner_and_its_campaign(providers: dict[str, Any],
                                                   b_scans: dict) -> None:
    labels_a, _ = read_labels(providers["a"] / "labels.jsonl")
    shared = max(providers["findings"]["campaigns"],
                 key=lambda c: sum(labels_a.get(a) == "agentic" for a in c["accounts"]))
    findings = b_scans[("with", EARLY)]["findings"]
    reasons = [r for a in findings["accounts"] for r in a["reasons"]]
    assert any(f"partner Lab A lists for its campaign Distillation campaign "
               f"{shared['campaign_id']}" in r for r in reasons)


def test_a_bundle_without_matches_changes_nothing(providers: dict[str, Any],
                                                  tmp_path: Path) -> None:
    from distillguard.intel import ReceivedIntel

    log = tmp_path / "first.parquet"
    first_exchanges(providers["b"] / "exchanges", EARLY, log)
    plain, _ = run_scan_job(ScanJob([log], None, tmp_path / "a.json"))
    empty, _ = run_scan_job(ScanJob([log], None, tmp_path / "b.json",
                                    intel=IndicatorMatcher(ReceivedIntel())))
    assert [a["account_id"] for a in plain["accounts"]] == [a["account_id"]
                                                            for a in empty["accounts"]]
