"""The tokenizer the watermark is defined over.

A watermark's green lists are lists of token ids, so whoever checks a text must cut it
into the same tokens as the model that wrote it. The package ships the tiny model's
byte-level BPE tokenizer (2,048 tokens, trained on the legitimate corpora's texts with
the ``tokenizers`` library; rebuild it with ``train_tokenizer``); a provider whose serving
stack uses another tokenizer passes that tokenizer's ``tokenizer.json`` instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from distillguard.errors import InputError

__all__ = ["DEFAULT_VOCAB_SIZE", "END_OF_TEXT", "encode_texts", "load_tokenizer",
           "train_tokenizer"]

END_OF_TEXT = "<|endoftext|>"
DEFAULT_VOCAB_SIZE = 2048


def train_tokenizer(texts: Sequence[str], *, vocab_size: int = DEFAULT_VOCAB_SIZE) -> Tokenizer:
    """A byte-level BPE tokenizer of ``vocab_size`` tokens learned from ``texts``; id 0 is
    ``END_OF_TEXT`` (separator, padding and start of generation)."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[END_OF_TEXT],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tokenizer.train_from_iterator(texts, trainer, length=len(texts))
    return tokenizer


def load_tokenizer(path: str | Path | None = None) -> Tokenizer:
    """The tokenizer in ``path`` (a ``tokenizer.json``), or the packaged one when None.

    Raises ``InputError`` when the file is missing or is not a tokenizer.
    """
    try:
        if path is None:
            text = resources.files("distillguard.safeguards").joinpath(
                "data/tokenizer.json").read_text(encoding="utf-8")
        else:
            text = Path(path).read_text(encoding="utf-8")
        return Tokenizer.from_str(text)
    except (OSError, UnicodeDecodeError) as exc:
        msg = f"cannot read the tokenizer {path}: {exc}"
        raise InputError(msg) from exc
    except Exception as exc:  # the tokenizers library raises a bare Exception on bad JSON
        msg = f"{path} is not a tokenizer.json: {exc}"
        raise InputError(msg) from exc


def encode_texts(tokenizer: Tokenizer, texts: Sequence[str]) -> list[np.ndarray]:
    """Token ids of each text (no special tokens added), as int64 arrays."""
    if not texts:
        return []
    return [np.asarray(e.ids, dtype=np.int64)
            for e in tokenizer.encode_batch(list(texts), add_special_tokens=False)]
