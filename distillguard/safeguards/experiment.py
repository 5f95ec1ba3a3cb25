"""The radioactivity experiment, end to end on a CPU (needs the ``provenance`` extra).

1. Train a tiny teacher from scratch on the corpora's answers (teacher split).
2. A campaign sends it prompts (user texts of the corpora); it answers with the watermark.
3. The attacker's own base model is trained on other text (student split), then fine-tuned
   on a mix in which a share ``rho`` of the rows are the harvested answers (0 %, 1 %, 5 %,
   10 %), for several seeds.
4. Each student is tested: black box (it answers the campaign's prompts; pooled test) and
   open model (reading mode over held-out text).
5. The cost of the watermark to a legitimate customer, at each strength: perplexity of
   held-out text under the watermarked distribution, perplexity of watermarked answers as
   judged by the unwatermarked teacher, next-token accuracy and continuation overlap.

The test suite runs it at a tiny size; ``benchmarks/radioactivity.py`` at full size.
"""

from __future__ import annotations

import copy
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from distillguard.safeguards.corpus_text import corpus_texts
from distillguard.safeguards.detect import DEFAULT_ALPHA, score_many
from distillguard.safeguards.logits_processor import WatermarkLogitsProcessor, green_table
from distillguard.safeguards.radioactivity import black_box_test, open_model_test
from distillguard.safeguards.tiny_lm import (
    TinyLMConfig,
    generate,
    new_model,
    pack_blocks,
    perplexity,
    predict_next,
    train_lm,
)
from distillguard.safeguards.tokenizer import encode_texts, load_tokenizer
from distillguard.safeguards.watermark import DEFAULT_WATERMARK, WatermarkParams

__all__ = ["ExperimentConfig", "run_experiment"]


@dataclass(frozen=True)
class ExperimentConfig:
    key: str = "radioactivity-experiment"
    params: WatermarkParams = DEFAULT_WATERMARK
    model: TinyLMConfig = field(default_factory=TinyLMConfig)
    max_chars: int = 3000
    teacher_steps: int = 600
    base_steps: int = 400
    finetune_steps: int = 120
    batch_size: int = 32
    harvest_prompts: int = 1024
    prompt_tokens: int = 16
    output_tokens: int = 200
    mixes: tuple[float, ...] = (0.0, 0.01, 0.05, 0.10)
    seeds: int = 2
    null_seeds: int = 20
    probe_prompts: int = 256
    probe_tokens: int = 128
    reading_rows: int = 256
    reading_top_k: tuple[int, ...] = (1, 8)
    strengths: tuple[float, ...] = (0.0, 1.0, 2.0, 4.0)
    cost_rows: int = 128
    threads: int = 1


Log = Callable[[str], None]


def _prompt_ids(texts: list[str], tokenizer: Any, n: int, length: int) -> torch.Tensor:
    rows = [ids[:length] for ids in encode_texts(tokenizer, texts[: n * 3]) if ids.size >= length]
    return torch.from_numpy(np.stack(rows[:n])) if rows else torch.empty(0, length,
                                                                           dtype=torch.int64)


def _mixed_rows(own: torch.Tensor, harvested: torch.Tensor, rho: float, rows: int,
                seed: int) -> torch.Tensor:
    """``rows`` training rows, a share ``rho`` of them harvested, in a seeded random order."""
    gen = torch.Generator().manual_seed(seed)
    n_wm = round(rho * rows)
    if n_wm <= harvested.shape[0]:
        wm = harvested[torch.randperm(harvested.shape[0], generator=gen)[:n_wm]]
    else:
        wm = harvested[torch.randint(0, harvested.shape[0], (n_wm,), generator=gen)]
    mine = own[torch.randint(0, own.shape[0], (rows - n_wm,), generator=gen)]
    pool = torch.cat([wm, mine])
    return pool[torch.randperm(pool.shape[0], generator=gen)]


def _token_f1(a: np.ndarray, b: np.ndarray) -> float:
    ca, cb = Counter(a.tolist()), Counter(b.tolist())
    overlap = sum((ca & cb).values())
    if not overlap:
        return 0.0
    precision, recall = overlap / max(len(a), 1), overlap / max(len(b), 1)
    return 2 * precision * recall / (precision + recall)


def _detection(outputs: list[np.ndarray], tokenizer: Any, key: str,
               params: WatermarkParams) -> dict[str, Any]:
    """Each answer decoded to text and cut again into tokens, as a partner would check it."""
    texts = [tokenizer.decode(o.tolist()) for o in outputs]
    scores = score_many(encode_texts(tokenizer, texts), key, params)
    z = np.array([s.z for s in scores])
    p = np.array([s.p_value for s in scores])
    return {"texts": len(scores), "tokens_median": float(np.median([s.tokens for s in scores])),
            "z_median": float(np.median(z)), "z_min": float(z.min()),
            "share_z_above_4": float((z > 4).mean()),
            "share_p_below_alpha": float((p <= DEFAULT_ALPHA).mean())}


@torch.no_grad()
def _next_token_accuracy(model: Any, rows: torch.Tensor, table: torch.Tensor | None,
                         delta: float) -> float:
    logits = model(input_ids=rows).logits[:, :-1]
    if table is not None:
        logits = logits + delta * table[rows[:, :-1]].to(logits.dtype)
    return float((logits.argmax(-1) == rows[:, 1:]).float().mean())


def _cost(teacher: Any, heldout: torch.Tensor, config: ExperimentConfig, log: Log
          ) -> list[dict[str, Any]]:
    rows = heldout[: config.cost_rows]
    half = rows.shape[1] // 2
    table = green_table(config.key, config.model.vocab_size, config.params)
    results = []
    for delta in config.strengths:
        params = replace(config.params, delta=delta)
        ppl = perplexity(teacher, rows, key=config.key, delta=delta)
        accuracy = _next_token_accuracy(teacher, rows, table if delta else None, delta)
        proc = WatermarkLogitsProcessor(config.key, vocab_size=config.model.vocab_size,
                                        params=params) if delta else None
        outs = generate(teacher, rows[:, :half], new_tokens=rows.shape[1] - half,
                        processor=proc, seed=7)
        gen_ppl = perplexity(teacher, torch.cat([rows[:, :half], torch.from_numpy(
            np.stack(outs))], dim=1))
        f1 = float(np.mean([_token_f1(o, r) for o, r in zip(outs, rows[:, half:].numpy(),
                                                             strict=True)]))
        results.append({"delta": delta, "heldout_perplexity": ppl, "next_token_accuracy":
                        accuracy, "generated_perplexity_by_unwatermarked_teacher": gen_ppl,
                        "continuation_token_f1": f1})
        log(f"cost delta={delta}: held-out ppl {ppl:.1f}, top-1 {accuracy:.3f}, "
            f"generated ppl {gen_ppl:.1f}, continuation F1 {f1:.3f}")
    return results


def _test_student(student: Any, probe_prompts: torch.Tensor, reading: torch.Tensor,
                  config: ExperimentConfig, seed: int) -> dict[str, Any]:
    outputs = generate(student, probe_prompts, new_tokens=config.probe_tokens, seed=seed)
    bb = black_box_test(outputs, config.key, config.params, prompts=list(probe_prompts.numpy()))
    predicted = predict_next(student, reading, top_k=max(config.reading_top_k)).numpy()
    open_model = {f"open_model_top{k}": open_model_test(reading.numpy(), predicted[:, :, :k],
                                                        config.key, config.params).as_dict()
                  for k in config.reading_top_k}
    return {"black_box": bb.as_dict(), **open_model, "open_model": open_model[
        f"open_model_top{config.reading_top_k[0]}"]}


def run_experiment(corpora_dir: Path, config: ExperimentConfig, *,
                   log: Log = lambda _: None,
                   on_student: Callable[[dict[str, Any]], None] | None = None
                   ) -> dict[str, Any]:
    """Run the whole experiment; every student's result is also passed to ``on_student``
    as soon as it is known (a long run can be followed, or resumed by hand)."""
    torch.set_num_threads(config.threads)
    started = time.perf_counter()
    tokenizer = load_tokenizer()
    block = config.model.block

    def blocks_of(split: str) -> torch.Tensor:
        texts = corpus_texts(corpora_dir, roles=("assistant",), split=split)  # type: ignore[arg-type]
        return pack_blocks(encode_texts(tokenizer, [t[: config.max_chars] for t in texts]), block)

    teacher_blocks, own_blocks, heldout = blocks_of("teacher"), blocks_of("student"), blocks_of(
        "heldout")
    log(f"data: teacher {teacher_blocks.shape[0]} rows, student {own_blocks.shape[0]}, "
        f"held out {heldout.shape[0]} (x{block} tokens)")
    teacher = train_lm(new_model(config.model, seed=0), teacher_blocks,
                       steps=config.teacher_steps, batch_size=config.batch_size, seed=0)
    log(f"teacher trained ({config.teacher_steps} steps), held-out perplexity "
        f"{perplexity(teacher, heldout[: config.cost_rows]):.1f}")
    prompts = _prompt_ids(corpus_texts(corpora_dir, roles=("user",), split="teacher"),
                          tokenizer, config.harvest_prompts, config.prompt_tokens)
    processor = WatermarkLogitsProcessor(config.key, vocab_size=config.model.vocab_size,
                                         params=config.params)
    outputs = generate(teacher, prompts, new_tokens=config.output_tokens, processor=processor,
                       seed=1)
    detection = _detection(outputs, tokenizer, config.key, config.params)
    log(f"harvest: {len(outputs)} watermarked answers of {config.output_tokens} tokens; "
        f"z > 4 in {detection['share_z_above_4']:.1%}, median z {detection['z_median']:.1f}")
    harvested = pack_blocks([np.concatenate([p, o]) for p, o in zip(prompts.numpy(), outputs,
                                                                       strict=True)], block)
    base = train_lm(new_model(config.model, seed=1000), own_blocks, steps=config.base_steps,
                    batch_size=config.batch_size, seed=1000)
    log(f"attacker's base model trained ({config.base_steps} steps)")
    probe = prompts[: config.probe_prompts]
    reading = heldout[config.cost_rows: config.cost_rows + config.reading_rows]
    students = []
    plan = [(rho, seed) for rho in config.mixes
            for seed in range(config.null_seeds if rho == 0 else config.seeds)]
    for rho, seed in plan:
        rows = _mixed_rows(own_blocks, harvested, rho, config.finetune_steps * config.batch_size,
                           seed=10_000 + seed)
        student = train_lm(copy.deepcopy(base), rows, steps=config.finetune_steps,
                           batch_size=config.batch_size, seed=seed, in_order=True)
        result = {"rho": rho, "seed": seed, **_test_student(student, probe, reading, config,
                                                             seed=20_000 + seed)}
        students.append(result)
        log(f"student rho={rho:.0%} seed={seed}: black box p={result['black_box']['p_value']:.2e}"
            f" (z {result['black_box']['z']:.2f}), open model p="
            f"{result['open_model']['p_value']:.2e} (z {result['open_model']['z']:.2f})")
        if on_student is not None:
            on_student(result)
    return {"config": _config_dict(config), "detection": detection, "students": students,
            "cost": _cost(teacher, heldout, config, log),
            "seconds": time.perf_counter() - started}


def _config_dict(config: ExperimentConfig) -> dict[str, Any]:
    d = asdict(config)
    d["key"] = "(set)"
    return d
