"""The transformers logits processor inside ``generate``, and the end-to-end
radioactivity experiment at a tiny size (needs the provenance extra)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from distillguard.safeguards import WatermarkParams, bias_logits, score_many  # noqa: E402
from distillguard.safeguards.experiment import (  # noqa: E402
    Experiment,
    ExperimentConfig,
    run_experiment,
    student_plan,
    summarize,
)
from distillguard.safeguards.logits_processor import WatermarkLogitsProcessor  # noqa: E402
from distillguard.safeguards.tiny_lm import (  # noqa: E402
    TinyLMConfig,
    generate,
    new_model,
    pack_blocks,
    perplexity,
)

torch.set_num_threads(1)
SMALL = TinyLMConfig(vocab_size=2048, n_embd=32, n_layer=1, n_head=2, block=32)


@pytest.mark.parametrize("width", [1, 2])
def test_processor_adds_the_same_bias_as_the_numpy_function(width: int) -> None:
    params = WatermarkParams(context_width=width, delta=1.7)
    processor = WatermarkLogitsProcessor("k", vocab_size=300, params=params)
    ids = torch.tensor([[5, 9, 11], [3, 3, 250]])
    scores = torch.randn(2, 300)
    expected = bias_logits(scores.numpy(), ids.numpy(), "k", params)
    assert np.allclose(processor(ids, scores.clone()).numpy(), expected, atol=1e-6)


def test_processor_leaves_rows_without_enough_context_and_pads_wider_heads() -> None:
    processor = WatermarkLogitsProcessor("k", vocab_size=100,
                                         params=WatermarkParams(context_width=2))
    scores = torch.zeros(1, 100)
    assert torch.equal(processor(torch.tensor([[4]]), scores), scores)
    wide = WatermarkLogitsProcessor("k", vocab_size=100)(torch.tensor([[4]]), torch.zeros(1, 128))
    assert wide.shape == (1, 128) and bool((wide[0, 100:] == 0).all())


def test_generate_with_the_processor_writes_detectable_text() -> None:
    model = new_model(SMALL, seed=0)
    prompts = torch.randint(1, 2048, (8, 4), generator=torch.Generator().manual_seed(0))
    processor = WatermarkLogitsProcessor("gen-key", vocab_size=2048)
    marked = generate(model, prompts, new_tokens=120, processor=processor, seed=0)
    plain = generate(model, prompts, new_tokens=120, seed=0)
    assert all(len(o) == 120 for o in marked)
    assert min(s.z for s in score_many(marked, "gen-key")) > 4
    assert max(s.z for s in score_many(plain, "gen-key")) < 4


def test_watermarked_distribution_costs_perplexity_as_delta_grows() -> None:
    model = new_model(SMALL, seed=1)
    blocks = pack_blocks([np.arange(1, 200) % 50 + 1], 32)
    ppl = [perplexity(model, blocks, key="k", delta=d) for d in (0.0, 2.0, 4.0)]
    assert ppl[0] == perplexity(model, blocks)
    assert ppl[0] < ppl[1] < ppl[2]


def test_student_plan_puts_one_seed_of_each_mix_first() -> None:
    plan = student_plan(ExperimentConfig(mixes=(0.0, 0.05), seeds=2, null_seeds=3))
    assert plan == [(0.05, 0), (0.0, 0), (0.0, 1), (0.0, 2), (0.05, 1)]


@pytest.mark.slow
def test_radioactivity_end_to_end_on_tiny_models(shared_corpora: Path, tmp_path: Path) -> None:
    """Teacher from scratch, watermarked harvest, students at 0/1/5/10 %, both tests on each.
    Too small to show radioactivity at 5 % (benchmarks/radioactivity.py measures that);
    it checks the pipeline, the detection of the teacher's answers, and that a clean
    student is not accused."""
    config = ExperimentConfig(model=SMALL, max_chars=600, teacher_steps=60, base_steps=20,
                              finetune_steps=10, batch_size=16, harvest_prompts=48,
                              output_tokens=200, seeds=1, null_seeds=1, probe_prompts=32,
                              probe_tokens=48, reading_rows=32, strengths=(0.0, 2.0),
                              cost_rows=16, canary_samples=4, canary_tokens=12)
    results = run_experiment(shared_corpora, config, tmp_path)
    assert results["detection"]["texts"] == 48
    assert results["detection"]["share_z_above_4"] >= 0.95
    assert [(r["rho"], r["seed"]) for r in results["students"]] == [
        (0.0, 0), (0.01, 0), (0.05, 0), (0.1, 0)]
    for r in results["students"]:
        for test in ("black_box", "open_model_top1", "open_model_top8", "open_model_green_mass"):
            assert r[test]["scored"] > 0 and 0.0 <= r[test]["p_value"] <= 1.0
    assert results["students"][0]["black_box"]["p_value"] > 0.01
    assert results["students"][0]["canary"]["named"] == []  # the clean student names nobody
    assert all(r["canary"]["queries"] == 8 * config.canary_samples for r in results["students"])
    assert all(len(r["canary"]["exposure_p"]) == 8 for r in results["students"])
    cost = {c["delta"]: c for c in results["cost"]}
    assert cost[2.0]["heldout_perplexity"] > cost[0.0]["heldout_perplexity"]
    summary = summarize(results)
    assert summary["clean_students_above_0.01"]["black_box"].endswith("of 1")
    again = Experiment(shared_corpora, config, tmp_path).results()  # cached: nothing retrained
    assert again["students"] == results["students"]


def test_radioactivity_command_runs_the_open_model_test(tmp_path: Path) -> None:
    import orjson
    from typer.testing import CliRunner

    from distillguard.cli import app
    from tests.conftest import write_jsonl

    model_dir = tmp_path / "suspect"
    new_model(SMALL, seed=3).save_pretrained(model_dir)
    text = " ".join(f"Sentence number {i} says something about tea and rain." for i in range(40))
    outputs = write_jsonl(tmp_path / "o.jsonl", [{"text": text, "prompt": "Tell me a story."}])
    short = CliRunner().invoke(app, ["provenance", "radioactivity", str(outputs), "--key", "k",
                                     "--model", str(model_dir)])
    assert short.exit_code == 2 and "--probe" in short.output
    probe = write_jsonl(tmp_path / "p.jsonl", [{"text": text}])
    result = CliRunner().invoke(app, ["provenance", "radioactivity", str(outputs), "--key", "k",
                                      "--model", str(model_dir), "--probe", str(probe), "--json"])
    assert result.exit_code == 0, result.output
    report = orjson.loads(result.stdout)
    assert report["open_model"]["scored"] > 0 and report["open_model"]["p_value"] > 1e-3
    missing = CliRunner().invoke(app, ["provenance", "radioactivity", str(outputs), "--key", "k",
                                       "--model", str(tmp_path / "none")])
    assert missing.exit_code == 2 and "cannot load" in " ".join(missing.output.split())


def test_mixed_rows_hold_the_asked_share_of_harvested_rows() -> None:
    from distillguard.safeguards.experiment import _mixed_rows

    own = torch.zeros(500, 4, dtype=torch.int64)
    harvested = torch.ones(30, 4, dtype=torch.int64)
    rows = _mixed_rows(own, harvested, 0.05, 400, seed=1)
    assert rows.shape == (400, 4) and int(rows[:, 0].sum()) == 20
    assert int(_mixed_rows(own, harvested, 0.0, 400, seed=1).sum()) == 0
    assert int(_mixed_rows(own, harvested, 0.5, 400, seed=1)[:, 0].sum()) == 200  # reused rows
