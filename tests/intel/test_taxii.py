"""TAXII 2.1 push and pull against OASIS medallion on loopback (page size 20)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from distillguard.cli import app
from distillguard.errors import TaxiiError
from distillguard.evaluate import first_exchanges
from distillguard.intel import (
    IntelConfig,
    TaxiiTarget,
    findings_to_bundle,
    pull_objects,
    push_objects,
)
from tests.intel.conftest import PAGE_SIZE, SECRET, Medallion, tiny_findings


def _many_findings(campaigns: int) -> dict:
    findings = tiny_findings()
    template = findings["campaigns"][0]
    findings["campaigns"] = [
        {**template, "campaign_id": f"C{i}", "accounts": [f"acct_{i}_{k}" for k in range(3)],
         "indicators": {**template["indicators"],
                        "ips": [f"198.51.{i}.{k}" for k in range(1, 6)]}}
        for i in range(1, campaigns + 1)]
    return findings


def _target(server: Medallion, **auth: str) -> TaxiiTarget:
    return TaxiiTarget(server.api_root, server.collection,
                       **(auth or {"user": "lab-b", "password": "s3cret"}))


def test_round_trip_of_more_objects_than_a_page_returns_every_object(
        medallion: Medallion, config: IntelConfig) -> None:
    objects = orjson.loads(findings_to_bundle(_many_findings(4), config).serialize())["objects"]
    assert len(objects) > 3 * PAGE_SIZE
    report = push_objects(_target(medallion), objects)
    assert (report.sent, report.succeeded, report.failed) == (len(objects), len(objects), 0)
    pages: list[int] = []
    pulled = pull_objects(_target(medallion), per_page=PAGE_SIZE, on_page=pages.append)
    assert len(pages) >= 4 and max(pages) <= PAGE_SIZE
    assert sorted(pulled, key=lambda o: o["id"]) == sorted(objects, key=lambda o: o["id"])


def test_pushing_the_same_bundle_twice_adds_nothing(medallion: Medallion,
                                                     config: IntelConfig) -> None:
    objects = orjson.loads(findings_to_bundle(tiny_findings(), config).serialize())["objects"]
    push_objects(_target(medallion), objects)
    again = push_objects(_target(medallion), objects)
    assert again.succeeded == 0 and again.failed == len(objects)
    assert len(pull_objects(_target(medallion))) == len(objects)


def test_small_server_limit_splits_the_push_into_envelopes(medallion: Medallion,
                                                           config: IntelConfig,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    import distillguard.intel.taxii as taxii

    monkeypatch.setattr(taxii, "MAX_ENVELOPE_OBJECTS", 7)
    objects = orjson.loads(findings_to_bundle(tiny_findings(), config).serialize())["objects"]
    report = push_objects(_target(medallion), objects)
    assert report.envelopes == -(-len(objects) // 7)
    assert report.succeeded == len(objects)


def test_wrong_password_unknown_collection_and_no_server_are_clear_errors(
        medallion: Medallion) -> None:
    with pytest.raises(TaxiiError, match="401"):
        pull_objects(_target(medallion, user="lab-b", password="wrong"))
    with pytest.raises(TaxiiError, match=r"404|not found"):
        pull_objects(TaxiiTarget(medallion.api_root, "no-such-collection", user="lab-b",
                                 password="s3cret"))
    with pytest.raises(TaxiiError, match=r"pull from http://127\.0\.0\.1:9/"):
        pull_objects(TaxiiTarget("http://127.0.0.1:9/api/", "c", timeout=2))


def test_cli_push_pull_and_scan_names_the_shared_indicators(
        medallion: Medallion, providers: dict, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Provider A pushes its intel; provider B pulls it and its scan names A's indicators."""
    monkeypatch.setenv("DISTILLGUARD_INTEL_KEY", SECRET.decode())
    runner = CliRunner()
    findings = tmp_path / "a-findings.json"
    findings.write_bytes(orjson.dumps(providers["findings"]))
    bundle = tmp_path / "a.json"
    (tmp_path / "intel.yaml").write_text("producer: {name: Lab A}\n")
    result = runner.invoke(app, ["intel", "export", str(findings), "--out", str(bundle),
                                 "--attribute", "C1=Operator X",
                                 "--config", str(tmp_path / "intel.yaml")])
    assert result.exit_code == 0, result.output
    password = tmp_path / "taxii-password"
    password.write_text("s3cret\n")
    server = ["--taxii", medallion.api_root, "--collection", medallion.collection,
              "--user", "lab-b", "--password-file", str(password)]
    result = runner.invoke(app, ["intel", "push", str(bundle), *server])
    assert result.exit_code == 0, result.output
    pushed = orjson.loads(bundle.read_bytes())["objects"]
    assert len(pushed) > PAGE_SIZE
    pulled_path = tmp_path / "pulled.json"
    result = runner.invoke(app, ["intel", "pull", *server, "--out", str(pulled_path),
                                 "--page-size", str(PAGE_SIZE)])
    assert result.exit_code == 0, result.output
    pulled = orjson.loads(pulled_path.read_bytes())["objects"]
    assert sorted(pulled, key=lambda o: o["id"]) == sorted(pushed, key=lambda o: o["id"])
    out = tmp_path / "b-findings.json"
    b_log = tmp_path / "b-first.parquet"
    first_exchanges(providers["b"] / "exchanges", 3_000, b_log)
    result = runner.invoke(app, ["scan", str(b_log), "--intel", str(pulled_path),
                                 "--releases", str(providers["b"] / "releases.json"),
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    reasons = [r for a in orjson.loads(out.read_bytes())["accounts"] for r in a["reasons"]]
    assert any("listed by partner Lab A" in r or "partner Lab A lists" in r for r in reasons)


@pytest.mark.parametrize("option", ["--password", "--token"])
def test_a_taxii_secret_on_the_command_line_is_refused(option: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["intel", "pull", "--taxii", "https://taxii.invalid/api1/",
                                      "--collection", "c", "--user", "u", option, "s3cret",
                                      "--out", str(tmp_path / "out.json")])
    assert result.exit_code == 2, result.output
    assert f"{option} is not accepted" in result.output
    assert f"{option}-file" in result.output
    assert not (tmp_path / "out.json").exists()


def test_the_taxii_password_comes_from_the_environment(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """With the password in the environment, the user alone is enough; without, refused."""
    from distillguard.cli_intel import _target

    monkeypatch.setenv("DISTILLGUARD_TAXII_PASSWORD", "from-env")
    target = _target("https://taxii.invalid/api1/", "c", user="u", password_file=None,
                     password=None, token_file=None, token=None, insecure=False)
    assert (target.user, target.password, target.token) == ("u", "from-env", None)
    monkeypatch.delenv("DISTILLGUARD_TAXII_PASSWORD")
    result = CliRunner().invoke(app, ["intel", "pull", "--taxii", "https://taxii.invalid/api1/",
                                      "--collection", "c", "--user", "u",
                                      "--out", str(tmp_path / "out.json")])
    assert result.exit_code == 2, result.output
    assert "give --user and its password" in result.output


class _FakeCollection:
    """A server that says more objects follow but never says how to get them."""

    def __init__(self, pages: list[dict]) -> None:
        self.pages = pages
        self.asked: list[dict] = []

    def get_objects(self, **kwargs: object) -> dict:
        self.asked.append(kwargs)
        return self.pages[min(len(self.asked), len(self.pages)) - 1]


@pytest.mark.parametrize(("pages", "message"), [
    ([{"objects": [{"id": "a"}], "more": True}], "no 'next' token"),
    ([{"objects": {"id": "a"}, "more": False}], "no list of objects"),
])
def test_servers_that_break_pagination_fail_clearly(monkeypatch: pytest.MonkeyPatch,
                                                    pages: list[dict], message: str) -> None:
    import contextlib

    import distillguard.intel.taxii as taxii

    fake = _FakeCollection(pages)
    monkeypatch.setattr(taxii, "_open_collection",
                        lambda *a: contextlib.nullcontext((fake, None)))
    with pytest.raises(TaxiiError, match=message):
        pull_objects(TaxiiTarget("http://127.0.0.1:9/api/", "c"))


def test_pull_follows_next_tokens_until_no_more(monkeypatch: pytest.MonkeyPatch) -> None:
    import contextlib

    import distillguard.intel.taxii as taxii

    fake = _FakeCollection([{"objects": [{"id": "a"}], "more": True, "next": "t1"},
                            {"objects": [{"id": "b"}], "more": True, "next": "t2"},
                            {"objects": [{"id": "c"}], "more": False}])
    monkeypatch.setattr(taxii, "_open_collection",
                        lambda *a: contextlib.nullcontext((fake, None)))
    assert [o["id"] for o in pull_objects(TaxiiTarget("http://x/api/", "c"), per_page=1)] == [
        "a", "b", "c"]
    assert [k.get("next") for k in fake.asked] == [None, "t1", "t2"]
