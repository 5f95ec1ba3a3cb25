"""Bundles received from partners: malformed or hostile ones are refused whole, clearly."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from distillguard.cli import app
from distillguard.errors import BundleError
from distillguard.intel import IntelConfig, findings_to_bundle, parse_bundle, read_bundle
from tests.intel.conftest import tiny_findings

BUNDLE_ID = "bundle--6b4f4b1c-7c1e-4a3b-9d3a-0f6c2a1b3c4d"


def _good(config: IntelConfig) -> dict:
    return orjson.loads(findings_to_bundle(tiny_findings(), config).serialize())


def _indicator(pattern: str) -> dict:
    return {"type": "indicator", "spec_version": "2.1",
            "id": "indicator--0d3b8e2e-2f4a-4c1e-9b1e-6c2d7e8f9a01",
            "created": "2026-03-01T00:00:00Z", "modified": "2026-03-01T00:00:00Z",
            "pattern": pattern, "pattern_type": "stix", "valid_from": "2026-03-01T00:00:00Z"}


def _bundle(*objects: dict) -> bytes:
    return orjson.dumps({"type": "bundle", "id": BUNDLE_ID, "objects": list(objects)})


@pytest.mark.parametrize(("data", "message"), [
    (b'{"type": "bundle", "objects": [', "not valid JSON"),
    (b"\xff\xfe not utf-8", "not valid JSON"),
    (b'[1, 2, 3]', "not a STIX bundle"),
    (orjson.dumps({"type": "bundle", "id": BUNDLE_ID, "objects": {"a": 1}}), "must be a list"),
    (orjson.dumps({"type": "bundle", "id": BUNDLE_ID, "objects": [42]}), "object 0"),
    (_bundle(_indicator("[ipv4-addr:value = ")), "not valid STIX 2.1"),
    (_bundle(_indicator("[ipv4-addr:value = '1.2.3.4'] GARBAGE")), "not valid STIX 2.1"),
    (_bundle({"type": "x-evil-thing", "id": "x-evil-thing--0d3b8e2e-2f4a-4c1e-9b1e-6c2d7e8f9a01",
              "spec_version": "2.1"}), "unknown type 'x-evil-thing'"),
    (_bundle({"type": "malwar", "id": "malwar--0d3b8e2e-2f4a-4c1e-9b1e-6c2d7e8f9a01",
              "spec_version": "2.1"}), "unknown type 'malwar'"),
    (_bundle({**_indicator("[ipv4-addr:value = '1.2.3.4']"), "valid_from": "yesterday"}),
     "not valid STIX 2.1"),
])
def test_malformed_bundles_are_refused_with_the_reason(data: bytes, message: str) -> None:
    with pytest.raises(BundleError, match=message):
        parse_bundle(data, source="partner.json")


def test_deeply_nested_json_is_refused() -> None:
    for depth in (100, 5000):
        nested = b'{"type": "bundle", "x": ' + b"[" * depth + b"]" * depth + b"}"
        with pytest.raises(BundleError, match=r"nested|not valid JSON"):
            parse_bundle(nested)


def test_too_many_objects_is_refused(config: IntelConfig) -> None:
    good = _good(config)
    with pytest.raises(BundleError, match="more than the limit"):
        parse_bundle(orjson.dumps(good), max_objects=len(good["objects"]) - 1)


def test_a_100_mb_bundle_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "huge.json"
    one = orjson.dumps(_indicator("[ipv4-addr:value = '1.2.3.4']"))
    count = 100 * 2**20 // len(one) + 1
    with open(path, "wb") as f:
        f.write(b'{"type": "bundle", "id": "' + BUNDLE_ID.encode() + b'", "objects": [')
        f.write(b",".join([one] * count))
        f.write(b"]}")
    assert path.stat().st_size > 100 * 2**20
    with pytest.raises(BundleError, match="more than the limit"):
        read_bundle(path)


def test_patterns_we_cannot_match_are_counted_not_guessed() -> None:
    data = _bundle(_indicator("[file:hashes.'SHA-256' = "
                              "'aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f']"))
    received = parse_bundle(data)
    assert received.indicators == [] and received.unmatchable == 1


def test_revoked_and_expired_indicators_are_left_out() -> None:
    revoked = {**_indicator("[ipv4-addr:value = '1.2.3.4']"), "revoked": True}
    expired = {**_indicator("[ipv4-addr:value = '1.2.3.5']"),
               "id": "indicator--1d3b8e2e-2f4a-4c1e-9b1e-6c2d7e8f9a01",
               "valid_until": "2026-03-02T00:00:00Z"}
    received = parse_bundle(_bundle(revoked, expired))
    assert received.indicators == [] and (received.revoked, received.expired) == (1, 1)


def test_cli_import_keeps_good_bundles_and_nothing_when_one_is_bad(
        config: IntelConfig, tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_bytes(orjson.dumps(_good(config)))
    bad = tmp_path / "bad.json"
    bad.write_bytes(_bundle(_indicator("[ipv4-addr:value = ")))
    into = tmp_path / "received"
    runner = CliRunner()
    result = runner.invoke(app, ["intel", "import", str(good), str(bad), "--into", str(into)])
    assert result.exit_code == 2
    words = " ".join(result.output.split())
    assert "bad.json" in words and "not valid STIX 2.1" in words
    assert not into.exists()
    result = runner.invoke(app, ["intel", "import", str(good), "--into", str(into)])
    assert result.exit_code == 0, result.output
    assert (into / "good.json").read_bytes() == good.read_bytes()
    words = " ".join(result.output.split())
    assert "Lab A" in words and "10 indicators" in words


def test_scan_with_a_bad_bundle_fails_before_scanning(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_bytes(b"[" * 2000)
    out = tmp_path / "findings.json"
    result = CliRunner().invoke(app, ["scan", str(tmp_path), "--intel", str(bad),
                                      "--out", str(out)])
    assert result.exit_code == 2
    assert "bad.json" in result.output
    assert not out.exists()
