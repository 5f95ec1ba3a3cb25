"""Plain texts from the real prompt corpora, for the tokenizer, the tiny models and the
detector's false-positive measurement.

Each text is one string a person or a model wrote: a prompt, a reference answer, or one
turn of a conversation. Texts are split deterministically (a hash of the text) so that the
teacher, the students and the held-out measurements never share a text.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Literal

import numpy as np
from tokenizers import Tokenizer

from distillguard.corpora import corpus_files, iter_corpus
from distillguard.safeguards.tokenizer import encode_texts

__all__ = ["LEGIT_CORPORA", "Split", "answer_ids", "corpus_texts", "split_of"]

# Conversations people had with assistants: what the tokenizer and the tiny models learn from.
LEGIT_CORPORA = ("dolly", "fastchat_bench", "hh_rlhf", "sharegpt")

Split = Literal["teacher", "student", "heldout"]
# Shares of texts per split, in order (teacher, student, held out).
_SPLIT_SHARES = (("teacher", 0.45), ("student", 0.45), ("heldout", 0.10))


def split_of(text: str) -> Split:
    """The split a text belongs to, from a hash of the text alone (same text, same split)."""
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8, person=b"dg-split").digest()
    u = int.from_bytes(digest, "big") / 2**64
    edge = 0.0
    for name, share in _SPLIT_SHARES:
        edge += share
        if u < edge:
            return name  # type: ignore[return-value]
    return "heldout"


def _item_texts(item: dict[str, object], roles: frozenset[str]) -> Iterator[str]:
    messages = item.get("messages")
    if isinstance(messages, list) and messages:
        for m in messages:
            if isinstance(m, dict) and m.get("role") in roles and isinstance(m.get("content"), str):
                yield m["content"]
        return
    if "user" in roles and isinstance(item.get("prompt"), str):
        yield item["prompt"]  # type: ignore[misc]
    if "assistant" in roles and isinstance(item.get("response"), str):
        yield item["response"]  # type: ignore[misc]


def corpus_texts(corpora_dir: Path, *, corpora: Iterable[str] = LEGIT_CORPORA,
                 roles: Iterable[str] = ("user", "assistant"), split: Split | None = None,
                 min_chars: int = 1) -> list[str]:
    """Distinct texts of ``corpora`` written in ``roles`` (``user``: prompts, ``assistant``:
    answers), in file order, optionally only those of one ``split``."""
    files = corpus_files(corpora_dir)
    wanted = frozenset(roles)
    seen: set[str] = set()
    texts: list[str] = []
    for name in corpora:
        if name not in files:
            continue
        for item in iter_corpus(files[name]):
            for text in _item_texts(item, wanted):
                text = text.strip()
                if len(text) < min_chars or text in seen:
                    continue
                if split is not None and split_of(text) != split:
                    continue
                seen.add(text)
                texts.append(text)
    return texts


def answer_ids(corpora_dir: Path, tokenizer: Tokenizer, split: Split, *,
               max_chars: int) -> list[np.ndarray]:
    """The answers of one ``split`` of the corpora, each cut to ``max_chars`` characters,
    as token ids: what the provenance experiments train teachers and students on."""
    texts = corpus_texts(corpora_dir, roles=("assistant",), split=split)
    return encode_texts(tokenizer, [t[:max_chars] for t in texts])
