from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer

from distillguard.safeguards import corpus_texts, encode_texts, load_tokenizer

SHARED = Path(__file__).resolve().parents[3] / "shared"


@pytest.fixture(scope="session")
def tokenizer() -> Tokenizer:
    return load_tokenizer()


@pytest.fixture(scope="session")
def heldout_texts() -> list[str]:
    """Held-out answers and prompts of the legitimate corpora, cut to 1,500 characters."""
    texts = corpus_texts(SHARED / "corpora", split="heldout", min_chars=200)
    return [t[:1500] for t in texts]


@pytest.fixture(scope="session")
def heldout_ids(tokenizer: Tokenizer, heldout_texts: list[str]) -> list[np.ndarray]:
    return encode_texts(tokenizer, heldout_texts[:3000])
