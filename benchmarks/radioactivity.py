"""The provenance bars, measured: watermark detection on the tiny teacher's answers,
radioactivity of students fine-tuned on 0 / 1 / 5 / 10 % watermarked data (20 clean seeds),
the watermark's cost per strength, and the detector's false-positive rate on >= 10,000
unwatermarked corpus texts.

    python benchmarks/radioactivity.py --workdir /tmp/radioactivity [--workers 2]
    python benchmarks/radioactivity.py --workdir /tmp/radioactivity --skip-fpr --bigram-only

Every stage is cached in --workdir: run it again to resume or to print the results.
On a shared machine run it under ``nice``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from pathlib import Path

import numpy as np

from distillguard.corpora import find_corpora_dir
from distillguard.safeguards import (
    DEFAULT_ALPHA,
    answer_ids,
    corpus_texts,
    encode_texts,
    load_tokenizer,
)
from distillguard.safeguards.bigram_lm import bigram_radioactivity
from distillguard.safeguards.detect import score_many
from distillguard.safeguards.experiment import Experiment, ExperimentConfig, summarize

CORPORA = ("dolly", "fastchat_bench", "hh_rlhf", "sharegpt", "orca_style", "self_instruct",
           "alpaca_selfinstruct", "codealpaca_selfinstruct", "ultrafeedback", "toolbench")


def false_positive_rate(corpora: Path, keys: int) -> dict[str, object]:
    """Every distinct corpus text of >= 200 characters (first 2,000 characters), each key."""
    texts = [t[:2000] for t in corpus_texts(corpora, corpora=CORPORA, min_chars=200)]
    ids = encode_texts(load_tokenizer(), texts)
    flagged, z_over_4, p_below_01 = [], [], []
    for k in range(keys):
        scores = score_many(ids, f"fpr-key-{k}")
        flagged.append(sum(s.p_value <= DEFAULT_ALPHA for s in scores))
        z_over_4.append(sum(s.z > 4 for s in scores))
        p_below_01.append(float(np.mean([s.p_value < 0.01 for s in scores])))
    n = len(ids)
    return {"texts": n, "keys": keys, "alpha": DEFAULT_ALPHA, "flagged_per_key": flagged,
            "fpr": sum(flagged) / (n * keys), "z_over_4_per_key": z_over_4,
            "share_p_below_0.01": float(np.mean(p_below_01)),
            "median_scored_pairs": float(np.median([max(i.size - 1, 0) for i in ids]))}


def bigram_students(corpora: Path, config: ExperimentConfig) -> dict[str, object]:
    """The whole experiment with numpy bigram models, which fit their data exactly: a
    teacher counted on the teacher split answers 1,024 prompts with the watermark;
    students of 300,000 tokens (20 seeds with none of those answers, 10 each with 1, 5
    and 10 %) answer 2,048 one-token prompts x 128 tokens; the black-box test on each."""
    tokenizer = load_tokenizer()
    rows = bigram_radioactivity(
        answer_ids(corpora, tokenizer, "teacher", max_chars=config.max_chars),
        answer_ids(corpora, tokenizer, "student", max_chars=config.max_chars),
        config.key, config.model.vocab_size, config.params)
    out: dict[str, object] = {"students": rows}
    for rho in sorted({r["rho"] for r in rows}):
        p = [r["p_value"] for r in rows if r["rho"] == rho]
        out[f"{rho:.0%}"] = {"students": len(p), "max_p": max(p), "median_p": float(np.median(p)),
                             "below_1e-5": sum(x < 1e-5 for x in p),
                             "above_0.01": sum(x > 0.01 for x in p)}
    return out


def _worker(args: tuple[Path, ExperimentConfig, Path, int, int]) -> None:
    corpora, config, workdir, worker, workers = args
    experiment = Experiment(corpora, config, workdir, log=_log)
    experiment.train_students(worker=worker, workers=workers)


START = time.perf_counter()


def _log(message: str) -> None:
    print(f"[{time.perf_counter() - START:7.0f}s] {message}", file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/distillguard-radioactivity"))
    parser.add_argument("--workers", type=int, default=1, help="processes training students")
    parser.add_argument("--fpr-keys", type=int, default=3, help="keys for the FPR measurement")
    parser.add_argument("--skip-fpr", action="store_true")
    parser.add_argument("--bigram-only", action="store_true",
                        help="only the bigram teacher and students (about a minute)")
    parser.add_argument("--corpora", type=Path, default=None)
    args = parser.parse_args()
    corpora = find_corpora_dir(args.corpora)
    config = ExperimentConfig()
    fpr_path = args.workdir / "fpr.json"
    args.workdir.mkdir(parents=True, exist_ok=True)
    if not args.skip_fpr and not fpr_path.is_file():
        _log("false-positive rate on unwatermarked corpus text ...")
        fpr_path.write_text(json.dumps(false_positive_rate(corpora, args.fpr_keys), indent=1))
    bigram_path = args.workdir / "bigram.json"
    if not bigram_path.is_file():
        _log("radioactivity with bigram teacher and students (about a minute) ...")
        bigram_path.write_text(json.dumps(bigram_students(corpora, config), indent=1))
    if args.bigram_only:
        bigram = json.loads(bigram_path.read_text())
        print(json.dumps({k: v for k, v in bigram.items() if k != "students"}, indent=1))
        return
    experiment = Experiment(corpora, config, args.workdir, log=_log)
    experiment.prepare()
    _log(f"detection: {experiment.detection()}")
    jobs = [(corpora, config, args.workdir, w, args.workers) for w in range(args.workers)]
    if args.workers > 1:
        with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
            pool.map(_worker, jobs)
    else:
        experiment.train_students()
    experiment.cost()
    report = summarize(experiment.results())
    if fpr_path.is_file():
        report["false_positives"] = json.loads(fpr_path.read_text())
    report["bigram_students_black_box"] = json.loads(bigram_path.read_text())
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
