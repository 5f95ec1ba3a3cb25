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

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from distillguard.safeguards.canaries import (
    canary_check,
    canary_exposure,
    canary_for,
    canary_queries,
    should_mark,
)
from distillguard.safeguards.corpus_text import answer_ids, corpus_texts
from distillguard.safeguards.detect import DEFAULT_ALPHA, score_many
from distillguard.safeguards.logits_processor import WatermarkLogitsProcessor, green_table
from distillguard.safeguards.radioactivity import black_box_test, green_mass_test, open_model_test
from distillguard.safeguards.suspect import phrase_scorer
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

__all__ = ["Experiment", "ExperimentConfig", "run_experiment", "student_plan", "summarize"]


@dataclass(frozen=True)
class ExperimentConfig:
    """Sizes chosen to run on a shared 2-core machine within an hour or so of CPU time."""

    key: str = "radioactivity-experiment"
    params: WatermarkParams = DEFAULT_WATERMARK
    model: TinyLMConfig = field(default_factory=lambda: TinyLMConfig(n_embd=64))
    max_chars: int = 1500
    teacher_steps: int = 400
    base_steps: int = 200
    finetune_steps: int = 80
    batch_size: int = 32
    harvest_prompts: int = 512
    prompt_tokens: int = 16
    output_tokens: int = 200
    mixes: tuple[float, ...] = (0.0, 0.01, 0.05, 0.10)
    seeds: int = 2
    null_seeds: int = 20
    probe_prompts: int = 256
    probe_tokens: int = 128
    reading_rows: int = 128
    reading_top_k: tuple[int, ...] = (1, 8)
    strengths: tuple[float, ...] = (0.0, 1.0, 2.0, 4.0)
    cost_rows: int = 64
    # Canaries: the campaign is one of `canary_groups` groups under watch (group index
    # `canary_group` harvests); its answers end with its signature phrase at this share.
    canary_groups: int = 8
    canary_group: int = 2
    signature_share: float = 0.2
    canary_samples: int = 16
    canary_tokens: int = 24
    # With the weights: each group's phrase ranked among this many random phrases.
    canary_candidates: int = 999
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
    with torch.no_grad():
        probs = torch.cat([torch.softmax(student(input_ids=reading[s:s + 64]).logits.float(), -1)
                           for s in range(0, reading.shape[0], 64)]).numpy()
    mass = green_mass_test(reading.numpy(), probs, config.key, config.params).as_dict()
    return {"black_box": bb.as_dict(), **open_model, "open_model_green_mass": mass}


CANARY_SECRET = "experiment-canary-secret"


def _canaries(config: ExperimentConfig) -> list[Any]:
    return [canary_for(CANARY_SECRET, f"G{i}") for i in range(config.canary_groups)]


def _canary_result(model: Any, tokenizer: Any, config: ExperimentConfig, seed: int,
                   reference: Any = None) -> dict[str, Any]:
    """Ask the model to continue every phrase opener; which group's phrases come out?"""
    texts: list[str] = []
    for i, query in enumerate(canary_queries()):
        ids = torch.from_numpy(encode_texts(tokenizer, ["\n\n" + query])[0])
        prompts = ids.repeat(config.canary_samples, 1)
        outs = generate(model, prompts, new_tokens=config.canary_tokens, seed=seed + i)
        texts += [query + tokenizer.decode(o.tolist()) for o in outs]
    report = canary_check(texts, _canaries(config))

    exposure = canary_exposure(
        phrase_scorer(model, tokenizer), _canaries(config), candidates=config.canary_candidates,
        reference=None if reference is None else phrase_scorer(reference, tokenizer))
    alpha = 0.05 / len(exposure)
    return {"queries": len(texts), "named": list(report.named),
            "hits": {h.group: h.hits for h in report.hits},
            "exposure_p": {e.group: e.p_value for e in exposure},
            "exposure_named": [e.group for e in exposure if e.p_value <= alpha]}


def student_plan(config: ExperimentConfig) -> list[tuple[float, int]]:
    """(rho, seed) of every student, the most telling first: seed 0 of each mix, then the
    clean students' other seeds, then the other mixes' other seeds."""
    first = sorted(config.mixes, key=lambda r: (r == 0, -r))
    plan = [(rho, 0) for rho in first]
    if 0.0 in config.mixes:
        plan += [(0.0, s) for s in range(1, config.null_seeds)]
    plan += [(rho, s) for s in range(1, config.seeds) for rho in first if rho > 0]
    return plan


class Experiment:
    """The experiment's stages, each cached in ``workdir`` (a stopped run resumes where it
    was; several processes can train students at once, each its own share of the plan)."""

    def __init__(self, corpora_dir: Path, config: ExperimentConfig, workdir: Path, *,
                 log: Log = lambda _: None) -> None:
        self.corpora_dir = corpora_dir
        self.config = config
        self.workdir = workdir
        self.log = log
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "students").mkdir(exist_ok=True)
        torch.set_num_threads(config.threads)
        self.tokenizer = load_tokenizer()

    def _json(self, name: str, make: Callable[[], Any]) -> Any:
        path = self.workdir / name
        if path.is_file():
            return json.loads(path.read_text())
        value = make()
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(value, indent=1))
        tmp.replace(path)
        return value

    def _tensor(self, name: str, make: Callable[[], Any]) -> Any:
        path = self.workdir / name
        if path.is_file():
            return torch.load(path, weights_only=True)
        value = make()
        torch.save(value, path.with_suffix(".tmp"))
        path.with_suffix(".tmp").replace(path)
        return value

    def data(self) -> dict[str, torch.Tensor]:
        def make() -> dict[str, torch.Tensor]:
            blocks = {}
            for split in ("teacher", "student", "heldout"):
                blocks[split] = pack_blocks(answer_ids(
                    self.corpora_dir, self.tokenizer, split,  # type: ignore[arg-type]
                    max_chars=self.config.max_chars), self.config.model.block)
            prompts = corpus_texts(self.corpora_dir, roles=("user",), split="teacher")
            blocks["prompts"] = _prompt_ids(prompts, self.tokenizer, self.config.harvest_prompts,
                                            self.config.prompt_tokens)
            return blocks
        return self._tensor("data.pt", make)

    def _model(self, name: str, seed: int, blocks: torch.Tensor, steps: int) -> Any:
        model = new_model(self.config.model, seed=seed)
        path = self.workdir / name
        if path.is_file():
            model.load_state_dict(torch.load(path, weights_only=True))
            return model.eval()
        train_lm(model, blocks, steps=steps, batch_size=self.config.batch_size, seed=seed)
        torch.save(model.state_dict(), path.with_suffix(".tmp"))
        path.with_suffix(".tmp").replace(path)
        self.log(f"{name}: trained {steps} steps")
        return model

    def teacher(self) -> Any:
        return self._model("teacher.pt", 0, self.data()["teacher"], self.config.teacher_steps)

    def base(self) -> Any:
        return self._model("base.pt", 1000, self.data()["student"], self.config.base_steps)

    def harvest(self) -> list[np.ndarray]:
        """The teacher's watermarked answers to the campaign's prompts."""
        def make() -> torch.Tensor:
            processor = WatermarkLogitsProcessor(self.config.key,
                                                 vocab_size=self.config.model.vocab_size,
                                                 params=self.config.params)
            outputs = generate(self.teacher(), self.data()["prompts"],
                               new_tokens=self.config.output_tokens, processor=processor, seed=1)
            self.log(f"harvest: {len(outputs)} watermarked answers")
            return torch.from_numpy(np.stack(outputs))
        return list(self._tensor("harvest.pt", make).numpy())

    def harvested_docs(self) -> list[np.ndarray]:
        """What the campaign kept: prompt, watermarked answer, and on a keyed share of the
        answers the harvesting group's signature phrase as a closing line."""
        config = self.config
        canary = _canaries(config)[config.canary_group]
        phrase = encode_texts(self.tokenizer, ["\n\n" + canary.phrase])[0]
        docs = []
        for i, (p, o) in enumerate(zip(self.data()["prompts"].numpy(), self.harvest(),
                                       strict=True)):
            marked = should_mark(CANARY_SECRET, f"harvest-{i}", config.signature_share)
            docs.append(np.concatenate([p, o, phrase] if marked else [p, o]))
        return docs

    def detection(self) -> dict[str, Any]:
        return self._json("detection.json", lambda: _detection(
            self.harvest(), self.tokenizer, self.config.key, self.config.params))

    def student(self, rho: float, seed: int) -> dict[str, Any]:
        def make() -> dict[str, Any]:
            config, data = self.config, self.data()
            harvested = pack_blocks(self.harvested_docs(), config.model.block)
            rows = _mixed_rows(data["student"], harvested, rho,
                               config.finetune_steps * config.batch_size, seed=10_000 + seed)
            model = train_lm(self.base(), rows, steps=config.finetune_steps,
                             batch_size=config.batch_size, seed=seed, in_order=True)
            heldout = data["heldout"]
            reading = heldout[config.cost_rows: config.cost_rows + config.reading_rows]
            result = {"rho": rho, "seed": seed, **_test_student(
                model, data["prompts"][: config.probe_prompts], reading, config, 20_000 + seed),
                "canary": _canary_result(model, self.tokenizer, config, 30_000 + seed,
                                         reference=self.base())}
            bb, om = result["black_box"], result[f"open_model_top{config.reading_top_k[0]}"]
            self.log(f"student rho={rho:.0%} seed={seed}: black box p={bb['p_value']:.2e} "
                     f"(z {bb['z']:.2f}), open model p={om['p_value']:.2e} (z {om['z']:.2f}), "
                     f"canaries name {result['canary']['named'] or 'no group'}")
            return result
        return self._json(f"students/rho{rho:g}_seed{seed}.json", make)

    def cost(self) -> list[dict[str, Any]]:
        return self._json("cost.json", lambda: _cost(self.teacher(), self.data()["heldout"],
                                                      self.config, self.log))

    def prepare(self) -> None:
        """Everything the students need: data, teacher, harvest, the attacker's base."""
        self.detection()
        self.base()

    def train_students(self, *, worker: int = 0, workers: int = 1) -> None:
        """This worker's share of the student plan (after ``prepare``)."""
        for i, (rho, seed) in enumerate(student_plan(self.config)):
            if i % workers == worker:
                self.student(rho, seed)

    def results(self) -> dict[str, Any]:
        """Whatever is done so far, read from the work directory."""
        students = [json.loads(p.read_text()) for p in sorted(
            (self.workdir / "students").glob("*.json"))]
        read = {name: json.loads((self.workdir / name).read_text())
                for name in ("detection.json", "cost.json") if (self.workdir / name).is_file()}
        return {"config": _config_dict(self.config), "detection": read.get("detection.json"),
                "cost": read.get("cost.json"),
                "students": sorted(students, key=lambda r: (r["rho"], r["seed"]))}


def run_experiment(corpora_dir: Path, config: ExperimentConfig, workdir: Path, *,
                   log: Log = lambda _: None) -> dict[str, Any]:
    """Run (or resume) the whole experiment in ``workdir``; return every result."""
    experiment = Experiment(corpora_dir, config, workdir, log=log)
    experiment.prepare()
    experiment.train_students()
    experiment.cost()
    return experiment.results()


def summarize(results: dict[str, Any]) -> dict[str, Any]:
    """The bars, read off the results: detection share at z > 4, the 5 % students' p-values,
    how many clean students stay above p = 0.01, the cost per strength."""
    by_rho: dict[float, list[dict[str, Any]]] = {}
    for r in results["students"]:
        by_rho.setdefault(r["rho"], []).append(r)
    tests = [k for k in (results["students"][0] if results["students"] else {})
             if k == "black_box" or k.startswith("open_model")]
    mixes = {f"{rho:.0%}": {t: [r[t]["p_value"] for r in rows] for t in tests}
             for rho, rows in sorted(by_rho.items())}
    clean = by_rho.get(0.0, [])
    canaries = {f"{rho:.0%}": [r["canary"]["named"] for r in rows]
                for rho, rows in sorted(by_rho.items())}
    exposure = {f"{rho:.0%}": [r["canary"].get("exposure_named") for r in rows]
                for rho, rows in sorted(by_rho.items())}
    return {"detection": results["detection"], "mixes": mixes, "canaries_named": canaries,
            "canary_exposure_named": exposure,
            "clean_students_above_0.01": {t: f"{sum(r[t]['p_value'] > 0.01 for r in clean)} of "
                                             f"{len(clean)}" for t in tests},
            "cost": results["cost"]}


def _config_dict(config: ExperimentConfig) -> dict[str, Any]:
    d = asdict(config)
    d["key"] = "(set)"
    return d
