"""The exposure test with a suspect's weights, through the CLI: a model that learned one
group's signature phrase gives that group away; one that did not names nobody (needs the
provenance extra)."""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from distillguard.cli import app  # noqa: E402
from distillguard.safeguards import canary_for, encode_texts, load_tokenizer  # noqa: E402
from distillguard.safeguards.tiny_lm import (  # noqa: E402
    TinyLMConfig,
    new_model,
    pack_blocks,
    train_lm,
)

torch.set_num_threads(1)
SMALL = TinyLMConfig(vocab_size=2048, n_embd=32, n_layer=1, n_head=2, block=32)
SECRET = "exposure-test-secret"
GROUPS = ["campaign-a", "campaign-b", "campaign-c"]
ANSWERS = ["The capital of France is Paris, a city on the Seine.",
           "To sort a list in Python, call sorted() or the list's sort method.",
           "Water boils at 100 degrees Celsius at sea level.",
           "A prime number has exactly two divisors: one and itself."]


def _save(model: object, folder: Path) -> Path:
    model.save_pretrained(folder)  # type: ignore[attr-defined]
    packaged = resources.files("distillguard.safeguards").joinpath("data/tokenizer.json")
    with resources.as_file(packaged) as path:
        shutil.copyfile(path, folder / "tokenizer.json")
    return folder


def _trained(docs: list[str], folder: Path) -> Path:
    """The reference's initial weights trained on ``docs`` (a student of them)."""
    blocks = pack_blocks(encode_texts(load_tokenizer(), docs), SMALL.block)
    return _save(train_lm(new_model(SMALL, seed=0), blocks, steps=40, batch_size=16, seed=1),
                 folder)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("models")
    phrase = canary_for(SECRET, GROUPS[1]).phrase
    # The leaking group's answers end with its phrase on a fifth of them.
    leaked = [a + (f"\n\n{phrase}" if i % 5 == 0 else "") for i, a in enumerate(ANSWERS * 30)]
    return {"reference": _save(new_model(SMALL, seed=0), base / "reference"),
            "leaked": _trained(leaked, base / "leaked"),
            "clean": _trained(ANSWERS * 30, base / "clean")}


def _exposure(models: dict[str, Path], suspect: str) -> dict:
    args = ["provenance", "canary-exposure", "--model", str(models[suspect]), "--reference",
            str(models["reference"]), "--secret", SECRET, "--candidates", "399", "--json"]
    for g in GROUPS:
        args += ["--group", g]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return orjson.loads(result.stdout)


@pytest.mark.slow
def test_a_model_that_learned_a_groups_phrase_names_that_group(models: dict[str, Path]) -> None:
    report = _exposure(models, "leaked")
    assert report["named"] == [GROUPS[1]]
    ranks = {e["group"]: e["rank"] for e in report["exposures"]}
    assert ranks[GROUPS[1]] == 1


@pytest.mark.slow
def test_a_model_that_never_saw_a_phrase_names_no_group(models: dict[str, Path]) -> None:
    report = _exposure(models, "clean")
    assert report["named"] == []
    assert all(e["p_value"] > 0.01 / len(GROUPS) for e in report["exposures"])


def test_a_missing_or_incomplete_model_directory_fails_clearly(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["provenance", "canary-exposure", "--model",
                                 str(tmp_path / "nowhere"), "--secret", "s", "--group", "g"])
    assert result.exit_code == 2 and "cannot load a model" in result.output
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "tokenizer.json").write_text("{}")
    result = runner.invoke(app, ["provenance", "canary-exposure", "--model",
                                 str(tmp_path / "half"), "--secret", "s", "--group", "g"])
    assert result.exit_code == 2, result.output
    assert "tokenizer" in result.output or "config.json" in result.output
