from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
from tokenizers import Tokenizer
from typer.testing import CliRunner

from distillguard.cli import app
from distillguard.safeguards import canary_for, derive_key, read_texts
from distillguard.safeguards.bigram_lm import bigram_counts, log_probs, sample
from tests.conftest import write_jsonl

runner = CliRunner()


def _texts(tokenizer: Tokenizer, heldout_ids: list[np.ndarray], key: str | None, n: int,
           seed: int) -> list[str]:
    logp = log_probs(bigram_counts(heldout_ids, 2048))
    rng = np.random.default_rng(seed)
    return [tokenizer.decode(ids.tolist()) for ids in
            sample(logp, rng.integers(1, 2048, n), 200, rng, key=key)]


def test_detect_prints_one_json_object_per_text(tmp_path: Path, tokenizer: Tokenizer,
                                                heldout_ids: list[np.ndarray]) -> None:
    key = derive_key("secret", "C1")
    marked = _texts(tokenizer, heldout_ids, key, 3, seed=0)
    rows = [{"id": f"m{i}", "text": t} for i, t in enumerate(marked)]
    rows.append({"id": "plain", "text": "A plain sentence written by a person, not a model."})
    path = write_jsonl(tmp_path / "t.jsonl", [*rows, b"{broken\n", {"no_text": 1}])
    result = runner.invoke(app, ["provenance", "detect", str(path), "--key", key, "--json"])
    assert result.exit_code == 0, result.output
    objects = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert [o["id"] for o in objects] == ["m0", "m1", "m2", "plain"]
    assert all(o["z"] > 4 and o["p_value"] < 1e-4 and o["watermarked"] for o in objects[:3])
    assert not objects[3]["watermarked"]
    assert "skipped" in result.stderr and ":2:" not in result.stderr


def test_detect_table_states_the_test(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("Some text to check for a watermark, nothing more.")
    result = runner.invoke(app, ["provenance", "detect", str(tmp_path), "--key", "k"])
    assert result.exit_code == 0, result.output
    assert "binomial" in result.output and "a.txt" in result.output
    assert "0 of 1 text(s) watermarked" in " ".join(result.output.split())


def test_detect_of_a_missing_path_fails_clearly(tmp_path: Path) -> None:
    result = runner.invoke(app, ["provenance", "detect", str(tmp_path / "none"), "--key", "k"])
    assert result.exit_code == 2 and "no such file" in " ".join(result.output.split())


def test_detect_with_a_bad_tokenizer_fails_clearly(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("text")
    bad = tmp_path / "tok.json"
    bad.write_text("{}")
    result = runner.invoke(app, ["provenance", "detect", str(tmp_path), "--key", "k",
                                 "--tokenizer", str(bad)])
    assert result.exit_code == 2 and "not a tokenizer" in " ".join(result.output.split())


def test_radioactivity_pools_outputs_into_one_p_value(tmp_path: Path, tokenizer: Tokenizer,
                                                      heldout_ids: list[np.ndarray]) -> None:
    texts = _texts(tokenizer, heldout_ids, "k", 20, seed=1)
    path = write_jsonl(tmp_path / "o.jsonl", [{"text": t, "prompt": "Tell me."} for t in texts])
    result = runner.invoke(app, ["provenance", "radioactivity", str(path), "--key", "k",
                                 "--json"])
    assert result.exit_code == 0, result.output
    report = orjson.loads(result.stdout)
    assert report["black_box"]["p_value"] < 1e-10 and "binomial" in report["test"]


def test_canary_check_names_the_leaking_campaign_from_findings(tmp_path: Path) -> None:
    findings = {"accounts": [{"account_id": "a1", "campaign_id": "C1"},
                             {"account_id": "a9", "campaign_id": None}],
                "campaigns": [{"campaign_id": "C1"}, {"campaign_id": "C2"}]}
    (tmp_path / "findings.json").write_bytes(orjson.dumps(findings))
    leaked = canary_for("s", "a9")
    outputs = write_jsonl(tmp_path / "o.jsonl", [{"text": "hello"}, {"text": leaked.phrase},
                                                 {"text": f"calling {leaked.tool_name}"}])
    result = runner.invoke(app, ["provenance", "canary-check", str(outputs), "--secret", "s",
                                 "--groups", str(tmp_path / "findings.json"), "--json"])
    assert result.exit_code == 0, result.output
    report = orjson.loads(result.stdout)
    assert report["named"] == ["a9"] and report["groups"] == 3
    clean = write_jsonl(tmp_path / "c.jsonl", [{"text": "hello"}] * 5)
    result = runner.invoke(app, ["provenance", "canary-check", str(clean), "--secret", "s",
                                 "--group", "C1", "--group", "a9"])
    assert result.exit_code == 0 and "no group named" in " ".join(result.output.split())


def test_canary_check_without_groups_fails_clearly(tmp_path: Path) -> None:
    outputs = write_jsonl(tmp_path / "o.jsonl", [{"text": "x"}])
    result = runner.invoke(app, ["provenance", "canary-check", str(outputs), "--secret", "s"])
    assert result.exit_code == 2 and "--group" in result.output


def test_canaries_and_key_print_what_a_group_received() -> None:
    result = runner.invoke(app, ["provenance", "canaries", "--secret", "s", "--group", "C1"])
    assert canary_for("s", "C1").tool_name in result.output
    result = runner.invoke(app, ["provenance", "key", "--secret", "s", "--group", "C1"])
    assert result.stdout.strip() == derive_key("s", "C1")


def test_reader_sets_bad_lines_aside(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "t.jsonl", [{"text": "a"}, b"nope\n", {"text": 3},
                                              {"text": "b", "prompt": "p", "id": 7}])
    read = read_texts(path)
    assert read.texts == ["a", "b"] and read.ids == ["t.jsonl:1", "7"]
    assert read.prompts == [None, "p"]
    assert [(r.line, r.reason[:7]) for r in read.rejected] == [(2, "not JSO"), (3, "not an ")]
