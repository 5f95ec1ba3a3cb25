"""Watermark overhead per generated token, and detector throughput.

    .venv/bin/python benchmarks/watermark.py [--rounds 3]

Generation: the same tiny GPT-2 (random weights: the cost does not depend on them) samples
the same prompts with and without the watermark's logits processor, alternating rounds in
one process; the ratio is the processor's overhead per token. Two sizes: the radioactivity
experiment's model and a wider one. Also the plain numpy ``bias_logits`` per step at real
vocabulary sizes (for a serving stack that calls it directly).

Detection: texts/s of ``score_texts`` (tokenize + score) on 800-character corpus texts,
against tokenizing alone in the same run.

Times are CPU seconds of this process (``time.process_time``), not wall time: on a shared
machine the wall clock measures the neighbours. Run with ``RAYON_NUM_THREADS=1`` to keep the
tokenizer on one thread too.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from distillguard.corpora import find_corpora_dir
from distillguard.safeguards import (
    bias_logits,
    corpus_texts,
    encode_texts,
    load_tokenizer,
    score_texts,
)
from distillguard.safeguards.logits_processor import WatermarkLogitsProcessor
from distillguard.safeguards.tiny_lm import TinyLMConfig, generate, new_model


def _generation(config: TinyLMConfig, rounds: int, batch: int, tokens: int) -> dict[str, float]:
    model = new_model(config, seed=0).eval()
    prompts = torch.randint(1, config.vocab_size, (batch, 16), generator=torch.Generator()
                            .manual_seed(0))
    processor = WatermarkLogitsProcessor("bench-key", vocab_size=config.vocab_size)
    plain, marked = [], []
    generate(model, prompts[:4], new_tokens=8)  # warm-up
    for _ in range(rounds):
        for times, proc in ((plain, None), (marked, processor)):
            t = time.process_time()
            generate(model, prompts, new_tokens=tokens, processor=proc, batch_size=batch)
            times.append(time.process_time() - t)
    per_token = batch * tokens
    return {"plain_us_per_token": 1e6 * min(plain) / per_token,
            "watermarked_us_per_token": 1e6 * min(marked) / per_token,
            "overhead": min(marked) / min(plain) - 1.0}


def _numpy_bias(vocab: int, batch: int, steps: int) -> float:
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((batch, vocab)).astype(np.float32)
    contexts = rng.integers(0, vocab, (batch, 1))
    t = time.process_time()
    for _ in range(steps):
        bias_logits(logits, contexts, "bench-key")
    return 1e6 * (time.process_time() - t) / (steps * batch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print("generation, 64 prompts x 128 new tokens, best of", args.rounds, "rounds:")
    for name, config in (("tiny (96 wide, 2 layers)", TinyLMConfig()),
                         ("wider (256 wide, 4 layers)", TinyLMConfig(n_embd=256, n_layer=4))):
        r = _generation(config, args.rounds, 64, 128)
        print(f"  {name}: {r['plain_us_per_token']:.0f} us/token plain, "
              f"{r['watermarked_us_per_token']:.0f} us/token watermarked: "
              f"overhead {r['overhead']:+.1%}")
    print("numpy bias_logits per sequence per step (batch 8):")
    for vocab in (2048, 32_000, 128_000):
        print(f"  vocabulary {vocab:,}: {_numpy_bias(vocab, 8, 20):.0f} us")
    texts = [t[:800] for t in corpus_texts(find_corpora_dir(), min_chars=800)][:4000]
    tokenizer = load_tokenizer()
    t = time.process_time()
    ids = encode_texts(tokenizer, texts)
    tokenize = time.process_time() - t
    t = time.process_time()
    score_texts(texts, tokenizer, "bench-key")
    detect = time.process_time() - t
    print(f"detector: {len(texts) / detect:,.0f} texts/s (median "
          f"{np.median([i.size for i in ids]):.0f} tokens) against {len(texts) / tokenize:,.0f} "
          f"texts/s tokenizing alone: scoring adds {detect / tokenize - 1:+.0%}")


if __name__ == "__main__":
    main()
