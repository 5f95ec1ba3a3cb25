"""Near-duplicate tokens: datasketch's MinHash, vectorized; reworded lines still meet."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasketch import MinHash

from distillguard.signals.near_duplicates import (
    SketchParams,
    lsh_shape,
    minhash_signatures,
    near_duplicate_tokens,
    word_hash32,
)

PARAMS = SketchParams(num_perm=8, threshold=0.4, min_words=5, seed=1)


def test_signatures_equal_datasketch_minhash() -> None:
    sets = [["alpha", "beta", "gamma"], ["delta"], ["beta", "epsilon", "zeta", "eta"]]
    words = pa.array([w for s in sets for w in s])
    owner = np.repeat(np.arange(len(sets)), [len(s) for s in sets])
    hashes = word_hash32(words)
    owners, signatures = minhash_signatures(hashes, owner, len(sets), PARAMS)
    assert owners.tolist() == [0, 1, 2]
    by_word = dict(zip(words.to_pylist(), hashes.tolist(), strict=True))
    for i, s in enumerate(sets):
        m = MinHash(num_perm=8, seed=1, scheme="affine32", hashfunc=lambda w: by_word[w])
        for w in s:
            m.update(w)
        assert signatures[i].tolist() == m.hashvalues.tolist()


def _tokens(texts: list[str], params: SketchParams = PARAMS) -> list[set[int]]:
    of_unit, tokens = near_duplicate_tokens(pa.array(texts), params)
    out: list[set[int]] = [set() for _ in texts]
    for u, t in zip(of_unit.tolist(), tokens.tolist(), strict=True):
        out[u].add(t)
    return out


def test_reworded_line_shares_tokens_unrelated_do_not() -> None:
    line = ("try not to repeat the verb for each instruction to maximize diversity "
            "of the generated gpt tasks")
    reworded = ("try not to repeat the verb for each request to enhance diversity "
                "of the generated gpt assignments")
    other = "my cat knocked the coffee mug off my desk this morning and now the carpet smells"
    a, b, c = _tokens([line, reworded, other])
    bands, _ = lsh_shape(PARAMS.threshold, PARAMS.num_perm)
    assert len(a) == len(b) == len(c) == bands
    assert a & b
    assert not a & c


def test_short_units_get_no_tokens_and_stopwords_do_not_count() -> None:
    short, stop = _tokens(["thank you for the help", "the and for are but not you your with this"])
    assert short == set() and stop == set()


def test_word_order_and_repeats_do_not_matter() -> None:
    a, b = _tokens(["rate the helpfulness honesty accuracy relevance",
                    "relevance accuracy honesty helpfulness rate rate"])
    assert a == b


def test_empty_input() -> None:
    of_unit, tokens = near_duplicate_tokens(pa.array([], pa.string()), PARAMS)
    assert len(of_unit) == len(tokens) == 0


def test_repeated_units_sketched_once_give_the_same_pairs() -> None:
    texts = ["rate the helpfulness honesty accuracy relevance of the answer",
             "thank you", "rate the helpfulness honesty accuracy relevance of the answer",
             "explain the proof of the theorem step by step with every lemma used",
             "thank you", "rate the helpfulness honesty accuracy relevance of the answer"]
    units = pa.array(texts)
    of_unit, tokens = near_duplicate_tokens(units, PARAMS)
    encoded = pc.dictionary_encode(units)
    once_unit, once_tokens = near_duplicate_tokens(encoded.dictionary, PARAMS,
                                                   copy_of=np.asarray(encoded.indices))
    assert len(of_unit) > 0
    assert of_unit.tolist() == once_unit.tolist()
    assert tokens.tolist() == once_tokens.tolist()
