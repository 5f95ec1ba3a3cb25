"""The lexicon's patterns give the same answer through RE2's binding (small batches) as
through Arrow (large ones): the gateway's scoring and the batch scan must agree."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from distillguard.corpora import corpus_files, iter_corpus
from distillguard.signals import load_lexicon
from distillguard.signals.regex import SMALL_BATCH_ROWS, regex_matches


def _strings(item: Any) -> Iterator[str]:
    if isinstance(item, str):
        yield item
    elif isinstance(item, dict):
        for value in item.values():
            yield from _strings(value)
    elif isinstance(item, list):
        for value in item:
            yield from _strings(value)


def _texts(corpora: Path, per_corpus: int = 300) -> list[str | None]:
    texts: list[str | None] = []
    for path in corpus_files(corpora).values():
        for item in itertools.islice(iter_corpus(path), per_corpus):
            texts.extend(_strings(item))
    # what else a request can hold: nothing, other scripts and case folding, a NUL
    return [*texts, None, "", "İSTANBUL ǅ ß ﬁ Ω K", "def f():\n\treturn 0\x00"]


def test_small_batches_match_as_arrow_does(shared_corpora: Path) -> None:
    lexicon = load_lexicon()
    patterns = [p for t in lexicon.techniques for p in (t.strong, t.weak) if p]
    patterns += [p for _, p in lexicon.capabilities]
    texts = pa.array(_texts(shared_corpora), pa.string())
    assert len(texts) > 10 * SMALL_BATCH_ROWS
    step = SMALL_BATCH_ROWS - 1
    hits = 0
    for pattern in patterns:
        arrow = regex_matches(texts, pattern)
        assert np.array_equal(arrow, np.asarray(pc.match_substring_regex(texts, pattern)
                                                .fill_null(False), dtype=bool))
        small = np.concatenate([regex_matches(texts.slice(i, step), pattern)
                                for i in range(0, len(texts), step)])
        assert np.array_equal(small, arrow), pattern
        hits += int(arrow.sum())
    assert hits > 100, "the patterns match some of the corpora's texts"


def test_an_empty_pattern_matches_nothing() -> None:
    assert not regex_matches(pa.array(["a", None]), "").any()
