"""A suspect model on disk, for the tests that need its weights (needs the ``provenance``
extra): a local ``transformers`` causal language model directory (``config.json`` and its
weights, as ``save_pretrained`` writes them) with its ``tokenizer.json``. Nothing is
downloaded: a directory that is not complete is an error.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer

from distillguard.errors import InputError
from distillguard.safeguards.tiny_lm import continuation_log_probs
from distillguard.safeguards.tokenizer import encode_texts, load_tokenizer

__all__ = ["PhraseScore", "load_model", "load_phrase_scorer", "phrase_scorer"]

# ``score(opener, continuations)``: the model's log-probability of each continuation after
# the opener (what ``canaries.canary_exposure`` takes).
PhraseScore = Callable[[str, Sequence[str]], list[float]]


def load_model(path: Path) -> Any:
    """The causal LM saved in directory ``path``, in eval mode (``InputError`` if there is
    none or it does not load)."""
    from transformers import AutoModelForCausalLM

    if not path.is_dir():
        msg = f"cannot load a model from {path}: no such directory"
        raise InputError(msg)
    if not (path / "config.json").is_file():
        msg = (f"cannot load a model from {path}: no config.json (save the model there with "
               "save_pretrained; nothing is downloaded)")
        raise InputError(msg)
    try:
        model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError) as exc:
        msg = f"cannot load a model from {path}: {str(exc).splitlines()[0]}"
        raise InputError(msg) from exc
    return model.eval()


def load_phrase_scorer(path: Path) -> PhraseScore:
    """The scorer of the causal LM saved in directory ``path`` with its ``tokenizer.json``."""
    if path.is_dir() and not (path / "tokenizer.json").is_file():
        msg = f"{path} has no tokenizer.json (the model's tokenizer, saved beside it)"
        raise InputError(msg)
    model = load_model(path)
    return phrase_scorer(model, load_tokenizer(path / "tokenizer.json"))


def phrase_scorer(model: Any, tokenizer: Tokenizer) -> PhraseScore:
    """``model``'s log-probability of each continuation after an opener that starts a line
    (as the signature phrase does)."""
    def score(opener: str, continuations: Sequence[str]) -> list[float]:
        prefix = encode_texts(tokenizer, ["\n\n" + opener])[0]
        whole = encode_texts(tokenizer, ["\n\n" + opener + c for c in continuations])
        with torch.no_grad():
            return continuation_log_probs(model, prefix, [w[prefix.size:] for w in whole])
    return score
