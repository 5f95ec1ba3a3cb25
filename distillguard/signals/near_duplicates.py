"""Near-duplicate tokens: MinHash LSH over the words of each text unit, vectorized.

Exact unit hashes tie requests that repeat a template line verbatim. An operator
who rewords every request (synonyms for most instruction words, sentences
reordered or merged, fillers) leaves no line verbatim, but each reworded
sentence still shares much of its word set with the original: the words no
paraphraser replaces (names, technical terms, placeholders, numbers) and those
it happened to keep. A MinHash signature of a unit's word set, cut into bands
of ``rows`` values (locality-sensitive hashing), gives one token per band:
two units whose word sets overlap with Jaccard similarity ``s`` share at least
one token with probability ``1 - (1 - s**rows)**bands``. The tokens join the
request's units, so the template rules (owners, varying fill-ins, crowds)
judge them like any unit: a token ordinary users share is a crowd token and
links nobody.

The signature is datasketch's ``affine32`` MinHash (``fmix32`` of a 32-bit
word hash, then ``a * h + b`` modulo 2^32 per permutation, permutations drawn
by ``datasketch.MinHash`` from ``seed``), computed for all units of a batch at
once with numpy; ``datasketch.MinHashLSH`` picks ``bands`` and ``rows`` for a
similarity ``threshold`` and ``num_perm``. Words are hashed once per distinct
word of the batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from distillguard.signals.hashing import hash_strings

__all__ = ["SketchParams", "lsh_shape", "minhash_signatures", "near_duplicate_tokens"]

# Words that carry no template: a reworded sentence keeps them whatever it says.
_STOPWORDS = pa.array(sorted({
    "the", "and", "for", "are", "but", "not", "you", "your", "with", "this", "that", "these",
    "those", "from", "have", "has", "had", "was", "were", "will", "would", "should", "could",
    "can", "may", "might", "must", "its", "it's", "our", "their", "them", "they", "there",
    "then", "than", "what", "which", "who", "whom", "when", "where", "why", "how", "all", "any",
    "each", "some", "such", "into", "onto", "out", "over", "also", "only", "very", "just",
    "about", "above", "below", "under", "more", "most", "other", "own", "same", "both", "one",
    "his", "her", "him", "she", "he's", "i'm", "don't", "does", "did", "doing", "been", "being",
    "off", "per", "via", "upon", "while", "because", "if", "so", "too", "here", "use",
}))
_PUNCTUATION = "\"'`.,;:!?()[]{}<>*#_-/\\|~^$%&+=@\t"
_FMIX = (16, 0x85EBCA6B, 13, 0xC2B2AE35, 16)   # MurmurHash3's 32-bit finalizer


@dataclass(frozen=True)
class SketchParams:
    """``num_perm`` MinHash values per unit, LSH for Jaccard ``threshold``; units with
    fewer than ``min_words`` distinct content words (3+ letters, no stopword) get none."""

    num_perm: int
    threshold: float
    min_words: int
    seed: int = 1


@cache
def lsh_shape(threshold: float, num_perm: int) -> tuple[int, int]:
    """``(bands, rows)`` datasketch's ``MinHashLSH`` picks for ``threshold`` and ``num_perm``.

    >>> lsh_shape(0.4, 8)
    (4, 2)
    """
    from datasketch import MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    return int(lsh.b), int(lsh.r)


@cache
def _permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from datasketch import MinHash

    a, b = MinHash(num_perm=num_perm, seed=seed, scheme="affine32").permutations
    return a.astype(np.uint32), b.astype(np.uint32)


def _fmix32(h: np.ndarray) -> np.ndarray:
    s1, m1, s2, m2, s3 = _FMIX
    h = h ^ (h >> np.uint32(s1))
    h = h * np.uint32(m1)
    h = h ^ (h >> np.uint32(s2))
    h = h * np.uint32(m2)
    return h ^ (h >> np.uint32(s3))


def word_hash32(words: pa.Array) -> np.ndarray:
    """32-bit word hashes (the low half of ``hash_strings``), one per distinct word."""
    return (hash_strings(words) & np.uint64(0xFFFFFFFF)).astype(np.uint32)


def minhash_signatures(word_hashes: np.ndarray, owner: np.ndarray, n: int,
                       params: SketchParams) -> tuple[np.ndarray, np.ndarray]:
    """MinHash signature of each of ``n`` sets given as ``(owner, word_hash)`` pairs
    (``owner`` sorted). Returns the owners that have words and their signatures
    (``len x num_perm``, ``uint32``), equal to datasketch's ``MinHash.hashvalues``
    for the same hash function."""
    if not len(owner):
        return np.zeros(0, np.int64), np.zeros((0, params.num_perm), np.uint32)
    a, b = _permutations(params.num_perm, params.seed)
    mixed = _fmix32(word_hashes.astype(np.uint32))
    starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
    signatures = np.empty((len(starts), len(a)), dtype=np.uint32)
    for p in range(len(a)):  # a column at a time: reduceat over 1-D is several times faster
        signatures[:, p] = np.minimum.reduceat(mixed * a[p] + b[p], starts)
    return owner[starts].astype(np.int64), signatures


def _band_tokens(signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """One signed 64-bit token per (signature, band): ``len x bands``."""
    sig = signatures[:, :bands * rows].astype(np.uint64).reshape(len(signatures), bands, rows)
    token = np.zeros((len(signatures), bands), np.uint64)
    for r in range(rows):
        token = (token ^ sig[:, :, r]) * np.uint64(0x9E3779B97F4A7C15)
        token ^= token >> np.uint64(29)
    token ^= (np.arange(bands, dtype=np.uint64) + np.uint64(1)) * np.uint64(0xBF58476D1CE4E5B9)
    token ^= token >> np.uint64(31)
    return token.view(np.int64)


def near_duplicate_tokens(units: pa.Array, params: SketchParams,
                          copy_of: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """LSH band tokens of ``units`` (normalized unit texts): ``(unit_index, token)`` pairs,
    ``bands`` per unit with at least ``params.min_words`` distinct content words.

    With ``copy_of``, ``units`` are distinct texts and unit ``i`` is a copy of
    ``units[copy_of[i]]`` (a dictionary encoding): each distinct text is sketched once
    and its tokens repeated for its copies. A batch's template lines repeat (a fifth
    of the units of a simulated batch of 8,192 requests are distinct), and the sketch
    is most of the signals' cost.
    """
    if copy_of is not None:
        of_distinct, tokens = near_duplicate_tokens(units, params)
        per_distinct = np.bincount(of_distinct, minlength=len(units))
        starts = np.concatenate([[0], np.cumsum(per_distinct)[:-1]])
        count = per_distinct[copy_of]
        of_unit = np.repeat(np.arange(len(copy_of)), count)
        rank = np.arange(len(of_unit)) - np.repeat(np.cumsum(count) - count, count)
        return of_unit, tokens[starts[copy_of][of_unit] + rank]
    if not len(units):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    words = pc.split_pattern(units, " ")
    encoded = pc.dictionary_encode(pc.list_flatten(words))
    # each distinct word once: its punctuation trimmed, whether it counts, its hash
    vocabulary = pc.utf8_trim(encoded.dictionary, characters=_PUNCTUATION)
    counted = np.asarray(pc.and_(
        pc.greater_equal(pc.utf8_length(vocabulary), 3),
        pc.invert(pc.is_in(vocabulary, value_set=_STOPWORDS))).to_numpy(zero_copy_only=False),
        dtype=bool)
    indices = np.asarray(encoded.indices)
    keep = counted[indices]
    if not keep.any():
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    parent = np.asarray(pc.list_parent_indices(words))[keep]
    hashes = word_hash32(vocabulary)[indices[keep]]
    # distinct words per unit: one sort of (unit, hash) keys
    keys = np.sort((parent.astype(np.uint64) << np.uint64(32)) | hashes.astype(np.uint64))
    keys = keys[np.r_[True, keys[1:] != keys[:-1]]]
    parent = (keys >> np.uint64(32)).astype(np.int64)
    hashes = (keys & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    counts = np.bincount(parent, minlength=len(units))
    enough = counts[parent] >= params.min_words
    owners, signatures = minhash_signatures(hashes[enough], parent[enough], len(units), params)
    bands, rows = lsh_shape(params.threshold, params.num_perm)
    tokens = _band_tokens(signatures, bands, rows)
    return np.repeat(owners, bands), tokens.ravel()
