"""A tiny GPT-2 trained from scratch on the corpora, on a CPU, in minutes (needs the
``provenance`` extra): the teacher whose outputs are watermarked and the students that
learn from them in the radioactivity experiment and its tests. Nothing is downloaded: the
model is built from a config and the packaged tokenizer.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from transformers import GPT2Config, GPT2LMHeadModel, LogitsProcessorList
from transformers.utils import logging as hf_logging

from distillguard.safeguards.logits_processor import WatermarkLogitsProcessor, green_table

__all__ = ["EOT_ID", "TinyLMConfig", "continuation_log_probs", "generate", "new_model",
           "pack_blocks", "perplexity", "predict_next", "train_lm"]

EOT_ID = 0
hf_logging.set_verbosity_error()
hf_logging.disable_progress_bar()


@dataclass(frozen=True, slots=True)
class TinyLMConfig:
    vocab_size: int = 2048
    n_embd: int = 96
    n_layer: int = 2
    n_head: int = 4
    block: int = 64


def new_model(config: TinyLMConfig, *, seed: int) -> GPT2LMHeadModel:
    """A freshly initialised tiny GPT-2 (same seed, same weights)."""
    torch.manual_seed(seed)
    gpt2 = GPT2Config(vocab_size=config.vocab_size, n_positions=config.block * 8,
                      n_embd=config.n_embd, n_layer=config.n_layer, n_head=config.n_head,
                      bos_token_id=EOT_ID, eos_token_id=EOT_ID, pad_token_id=EOT_ID,
                      resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    return GPT2LMHeadModel(gpt2)


def pack_blocks(docs: Sequence[np.ndarray], block: int) -> torch.Tensor:
    """Documents joined by the end-of-text id and cut into rows of ``block`` tokens."""
    parts: list[np.ndarray] = []
    for d in docs:
        parts += [np.asarray(d, dtype=np.int64), np.array([EOT_ID], dtype=np.int64)]
    flat = np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)
    n = flat.size // block
    return torch.from_numpy(flat[: n * block].reshape(n, block).copy())


def train_lm(model: GPT2LMHeadModel, blocks: torch.Tensor, *, steps: int, batch_size: int = 32,
             lr: float = 3e-3, seed: int = 0, in_order: bool = False,
             on_step: Callable[[int, float], None] | None = None) -> GPT2LMHeadModel:
    """Next-token training on batches of ``blocks`` (AdamW, linear warm-up, cosine decay);
    random batches, or with ``in_order`` one pass through ``blocks`` as given (then
    ``steps`` is at most rows / batch_size). Returns the model in eval mode."""
    gen = torch.Generator().manual_seed(seed)
    if in_order:
        steps = min(steps, blocks.shape[0] // batch_size)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    warm = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(s, steps)
                                                                          / steps)))
    model.train()
    for step in range(steps):
        if in_order:
            batch = blocks[step * batch_size:(step + 1) * batch_size]
        else:
            batch = blocks[torch.randint(0, blocks.shape[0], (batch_size,), generator=gen)]
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        if on_step is not None:
            on_step(step, float(loss.detach()))
    return model.eval()


@torch.no_grad()
def generate(model: GPT2LMHeadModel, prompts: torch.Tensor, *, new_tokens: int,
             processor: WatermarkLogitsProcessor | None = None, seed: int = 0,
             batch_size: int = 64, temperature: float = 1.0) -> list[np.ndarray]:
    """Sampled continuations (``new_tokens`` each, prompt excluded) of equal-length
    ``prompts`` (n, prompt_len), watermarked when ``processor`` is given."""
    torch.manual_seed(seed)
    processors = LogitsProcessorList([processor] if processor is not None else [])
    out: list[np.ndarray] = []
    for start in range(0, prompts.shape[0], batch_size):
        chunk = prompts[start:start + batch_size]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ids = model.generate(chunk, attention_mask=torch.ones_like(chunk), do_sample=True,
                                 temperature=temperature, top_k=0, top_p=1.0,
                                 max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                                 logits_processor=processors, pad_token_id=EOT_ID)
        out += [row[chunk.shape[1]:].numpy() for row in ids]
    return out


@torch.no_grad()
def perplexity(model: GPT2LMHeadModel, blocks: torch.Tensor, *, key: str | None = None,
               delta: float = 0.0, batch_size: int = 64) -> float:
    """Perplexity of ``blocks`` under the model, or under its watermarked distribution
    (logits + ``delta`` on the green list of ``key``, one-token context) when ``key`` is set."""
    table = green_table(key, model.config.vocab_size) if key is not None and delta else None
    total, count = 0.0, 0
    for start in range(0, blocks.shape[0], batch_size):
        batch = blocks[start:start + batch_size]
        logits = model(input_ids=batch).logits[:, :-1].float()
        if table is not None:
            logits = logits + delta * table[batch[:, :-1]].to(logits.dtype)
        nll = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                                batch[:, 1:].reshape(-1), reduction="sum")
        total += float(nll)
        count += batch[:, 1:].numel()
    return math.exp(total / max(count, 1))


@torch.no_grad()
def predict_next(model: GPT2LMHeadModel, blocks: torch.Tensor, *, top_k: int = 1,
                 batch_size: int = 64) -> torch.Tensor:
    """The model's ``top_k`` most likely next tokens at every position of ``blocks``:
    (rows, T, top_k), most likely first."""
    rows = [model(input_ids=blocks[s:s + batch_size]).logits.topk(top_k, dim=-1).indices
            for s in range(0, blocks.shape[0], batch_size)]
    return torch.cat(rows) if rows else blocks[:, :, None].clone()


@torch.no_grad()
def continuation_log_probs(model: GPT2LMHeadModel, prefix: np.ndarray,
                           continuations: Sequence[np.ndarray]) -> list[float]:
    """The model's log-probability of each continuation's tokens after ``prefix``."""
    if not continuations:
        return []
    n = len(prefix)
    rows = [np.concatenate([prefix, c]) for c in continuations]
    batch = torch.full((len(rows), max(r.size for r in rows)), EOT_ID, dtype=torch.int64)
    for i, r in enumerate(rows):
        batch[i, : r.size] = torch.from_numpy(r.astype(np.int64))
    logp = torch.log_softmax(model(input_ids=batch).logits.float(), -1)
    return [float(logp[i, torch.arange(n - 1, r.size - 1), batch[i, n: r.size]].sum())
            for i, r in enumerate(rows)]
