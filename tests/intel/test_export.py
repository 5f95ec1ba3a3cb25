"""findings.json -> STIX 2.1 bundle: what it holds, that it validates, that it leaks nothing."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest
import stix2
from typer.testing import CliRunner

from distillguard.cli import app
from distillguard.errors import IntelConfigError, IntelError
from distillguard.intel import (
    IntelConfig,
    findings_to_bundle,
    load_intel_config,
    parse_bundle,
    validate_bundle_text,
)
from tests.intel.conftest import SECRET, tiny_findings


def _objects(bundle: stix2.Bundle) -> list[dict]:
    return orjson.loads(bundle.serialize())["objects"]


def test_bundle_passes_the_stix2_parser_and_the_oasis_validator(config: IntelConfig) -> None:
    text = findings_to_bundle(tiny_findings(), config, attribution={"C1": "Operator X"}
                              ).serialize(pretty=True)
    parsed = stix2.parse(text, allow_custom=True)
    assert len(parsed.objects) == len(orjson.loads(text)["objects"])
    report = validate_bundle_text(text)
    assert report.errors == []


def test_bundle_holds_campaign_attribution_techniques_indicators_and_sightings(
        config: IntelConfig) -> None:
    objects = _objects(findings_to_bundle(tiny_findings(), config,
                                          attribution={"C1": "Operator X"}))
    by_type: dict[str, list[dict]] = {}
    for o in objects:
        by_type.setdefault(o["type"], []).append(o)
    identity = by_type["identity"][0]
    assert identity["name"] == "Lab A"
    campaign = by_type["campaign"][0]
    assert campaign["confidence"] == 87 and campaign["first_seen"] == "2026-03-01T02:00:00Z"
    assert campaign["x_distillguard_accounts"] == 4
    assert by_type["intrusion-set"][0]["name"] == "Operator X"
    relations = {(r["source_ref"].split("--")[0], r["relationship_type"],
                  r["target_ref"].split("--")[0]) for r in by_type["relationship"]}
    assert {("campaign", "attributed-to", "intrusion-set"), ("campaign", "uses", "attack-pattern"),
            ("indicator", "indicates", "campaign")} <= relations
    atlas = {ref["external_id"] for p in by_type["attack-pattern"]
             for ref in p["external_references"]}
    assert atlas == {"AML.T0024", "AML.T0024.002"}
    assert len(by_type["attack-pattern"]) == 2
    patterns = sorted(i["pattern"] for i in by_type["indicator"])
    assert "[ipv4-addr:value = '198.51.100.7']" in patterns
    assert "[ipv4-addr:value ISSUBSET '198.51.100.0/24']" in patterns
    assert "[ipv6-addr:value = '2001:db8::5']" in patterns
    assert "[autonomous-system:number = 64500]" in patterns
    assert "[x-llm-prompt-template:unit_hash = '0123456789abcdef']" in patterns
    assert "[x-tls-client-fingerprint:value = 't13d1516h2_8daaf6152771_b0da82dd1658']" in patterns
    assert sum(p.startswith("[x-payment-instrument:keyed_hash") for p in patterns) == 2
    assert all(i["confidence"] == 87 for i in by_type["indicator"])
    sighting = by_type["sighting"][0]
    assert sighting["count"] == 4321 and sighting["where_sighted_refs"] == [identity["id"]]
    assert sighting["first_seen"] == "2026-03-01T02:00:00Z"
    amber = stix2.TLP_AMBER.id
    assert all(o.get("object_marking_refs") == [amber] for o in objects
               if o["type"] not in ("identity", "marking-definition"))
    assert any(o["id"] == amber for o in objects)


def test_tlp_can_be_chosen(config: IntelConfig) -> None:
    import dataclasses

    objects = _objects(findings_to_bundle(tiny_findings(), dataclasses.replace(config, tlp="red")))
    assert {o["object_marking_refs"][0] for o in objects if "object_marking_refs" in o} == {
        stix2.TLP_RED.id}


def test_account_ids_and_payment_fingerprints_leave_only_as_keyed_hashes(
        config: IntelConfig) -> None:
    findings = tiny_findings()
    text = findings_to_bundle(findings, config).serialize()
    raw = {a for c in findings["campaigns"] for a in c["accounts"]}
    raw |= {p for c in findings["campaigns"] for p in c["indicators"]["payment_fingerprints"]}
    assert raw and not [value for value in raw if value in text]
    hasher = config.hasher()
    campaign = next(o for o in orjson.loads(text)["objects"] if o["type"] == "campaign")
    assert sorted(campaign["x_distillguard_account_hashes"]) == sorted(
        hasher.hash(a) for a in findings["campaigns"][0]["accounts"])
    assert hasher.hash("pmfp_rawcard_1") in text


def test_scanned_traffic_exports_without_raw_identifiers(scanned_provider: dict) -> None:
    findings, config = scanned_provider["findings"], scanned_provider["config"]
    assert findings["campaigns"], "the simulated provider has campaigns"
    text = findings_to_bundle(findings, config).serialize()
    raw = {a["account_id"] for a in findings["accounts"]}
    raw |= {a for c in findings["campaigns"] for a in c["accounts"]}
    raw |= {p for c in findings["campaigns"] for p in c["indicators"]["payment_fingerprints"]}
    raw |= scanned_provider["raw_identifiers"]  # every account id and payment fingerprint
    leaked = [value for value in raw if value in text]
    assert raw and leaked == []
    assert validate_bundle_text(findings_to_bundle(findings, config).serialize()).errors == []


def test_export_is_deterministic(config: IntelConfig) -> None:
    first = findings_to_bundle(tiny_findings(), config).serialize()
    again = findings_to_bundle(tiny_findings(), config).serialize()
    assert re.sub(r"bundle--[0-9a-f-]+", "", first) == re.sub(r"bundle--[0-9a-f-]+", "", again)


def test_export_round_trips_through_the_reader(config: IntelConfig) -> None:
    text = findings_to_bundle(tiny_findings(), config).serialize()
    received = parse_bundle(text.encode())
    kinds = received.by_kind()
    assert kinds == {"ip": 3, "subnet": 1, "asn": 1, "client_fingerprint": 1, "template": 2,
                     "payment": 2}
    (campaign,) = received.campaigns
    assert campaign.partner == "Lab A" and "C1" in campaign.name


def test_missing_secret_is_a_clear_error() -> None:
    with pytest.raises(IntelConfigError, match="DISTILLGUARD_INTEL_KEY"):
        findings_to_bundle(tiny_findings(), IntelConfig(producer="Lab A"))


def test_secret_from_env_or_file_and_short_ones_refused(tmp_path: Path) -> None:
    assert load_intel_config(environ={"DISTILLGUARD_INTEL_KEY": SECRET.decode()}).secret == SECRET
    key = tmp_path / "key"
    key.write_bytes(SECRET + b"\n")
    (tmp_path / "intel.yaml").write_text(f"producer: {{name: Lab B}}\nsecret_file: {key}\n")
    loaded = load_intel_config(tmp_path / "intel.yaml", environ={})
    assert loaded.secret == SECRET and loaded.producer == "Lab B"
    with pytest.raises(IntelConfigError, match="at least 16"):
        load_intel_config(environ={"DISTILLGUARD_INTEL_KEY": "short"})
    (tmp_path / "bad.yaml").write_text("tlp: purple\n")
    with pytest.raises(IntelConfigError, match="tlp"):
        load_intel_config(tmp_path / "bad.yaml", environ={})


def test_not_findings_and_unknown_attribution_fail_clearly(config: IntelConfig) -> None:
    with pytest.raises(IntelError, match="no 'campaigns'"):
        findings_to_bundle({"accounts": []}, config)
    with pytest.raises(IntelError, match="C9"):
        findings_to_bundle(tiny_findings(), config, attribution={"C9": "X"})


def test_cli_export_validates_and_writes(findings_file: Path, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISTILLGUARD_INTEL_KEY", SECRET.decode())
    out = tmp_path / "bundle.json"
    result = CliRunner().invoke(app, ["intel", "export", str(findings_file), "--out", str(out),
                                      "--attribute", "C1=Operator X", "--validate"])
    assert result.exit_code == 0, result.output
    assert "0 error(s)" in result.output
    assert any(o["type"] == "intrusion-set" for o in orjson.loads(out.read_bytes())["objects"])
    result = CliRunner().invoke(app, ["intel", "validate", str(out)])
    assert result.exit_code == 0 and "0 error(s)" in result.output


def test_cli_export_without_secret_writes_nothing(findings_file: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISTILLGUARD_INTEL_KEY", raising=False)
    out = tmp_path / "bundle.json"
    result = CliRunner().invoke(app, ["intel", "export", str(findings_file), "--out", str(out)])
    assert result.exit_code == 2
    assert "no intel secret configured" in result.output
    assert not out.exists()


def test_export_with_the_store_adds_a_sighting_per_indicator(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from distillguard.engines import ExchangeStore
    from tests.conftest import make_record, write_jsonl

    records = [make_record(i, account_id=f"acct_secret_{i % 2}", ip="198.51.100.7",
                           ts=f"2026-03-0{1 + i}T10:00:00Z") for i in range(4)]
    records.append(make_record(9, account_id="someone_else", ip="198.51.100.7"))
    with ExchangeStore(tmp_path / "store.duckdb") as store:
        store.ingest([write_jsonl(tmp_path / "log.jsonl", records)])
    findings = tmp_path / "findings.json"
    findings.write_bytes(orjson.dumps(tiny_findings()))
    monkeypatch.setenv("DISTILLGUARD_INTEL_KEY", SECRET.decode())
    out = tmp_path / "bundle.json"
    result = CliRunner().invoke(app, ["intel", "export", str(findings), "--out", str(out),
                                      "--db", str(tmp_path / "store.duckdb")])
    assert result.exit_code == 0, result.output
    objects = {o["id"]: o for o in orjson.loads(out.read_bytes())["objects"]}
    ip_indicator = next(o for o in objects.values() if o["type"] == "indicator"
                        and o["pattern"] == "[ipv4-addr:value = '198.51.100.7']")
    sighting = next(o for o in objects.values() if o["type"] == "sighting"
                    and o["sighting_of_ref"] == ip_indicator["id"])
    assert sighting["count"] == 4  # the campaign's own exchanges, not someone else's
    assert sighting["first_seen"] == "2026-03-01T10:00:00Z"
    assert sighting["last_seen"] == "2026-03-04T10:00:00Z"
    assert "2 accounts" in sighting["description"]


def test_cli_errors_keep_brackets_as_written(findings_file: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISTILLGUARD_INTEL_KEY", SECRET.decode())
    result = CliRunner().invoke(app, ["intel", "export", str(findings_file), "--out",
                                      str(tmp_path / "b.json"), "--attribute", "[bold]C1"])
    assert result.exit_code == 2
    assert "got '[bold]C1'" in " ".join(result.output.split())
