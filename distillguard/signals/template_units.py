"""Template fingerprints: the hashed text units a request is built from.

A pipeline's prompts share long fixed pieces (system prompts, instruction
wrappers, rubric text) around varying fill-ins. Cutting each request into
units (lines and sentences, lowercased, digits folded to ``0``, trimmed) and
hashing each unit lets the scan count, across the whole
traffic, how many accounts and how many *different* requests share a unit: a
unit shared by many accounts with many different fill-ins is a template; a
whole prompt repeated verbatim (a benchmark question, a popular copy-paste)
is not. Short units ("Options:", "Thank you.") are dropped: they are common
to everyone.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from distillguard.signals.hashing import hash_strings
from distillguard.signals.near_duplicates import SketchParams, near_duplicate_tokens
from distillguard.signals.text import last_message_text, window

__all__ = ["TemplateUnits", "template_units"]

_SPLIT = r"\n+|[.!?;]\s+"


class TemplateUnits:
    """Per request: its distinct unit hashes (``units``, a list<int64> array) and ``text_hash``,
    the hash of the whole normalized request (equal for verbatim repeats).

    Hashes are 64-bit XXH3 read as signed integers: every engine (DuckDB, Spark,
    Parquet) has a signed 64-bit type, not all have an unsigned one.
    """

    def __init__(self, units: pa.ListArray, text_hash: np.ndarray) -> None:
        self.units = units
        self.text_hash = text_hash


def _normalize(text: pa.Array) -> pa.Array:
    text = pc.utf8_lower(text)
    text = pc.replace_substring_regex(text, r"\d+", "0")
    return text


def _distinct_per_request(parents: np.ndarray, hashes: np.ndarray
                          ) -> tuple[np.ndarray, np.ndarray]:
    """Each request's hashes once, first occurrences in order (``parents`` sorted).

    A request's lines repeat, and so do the near-duplicate tokens of its units; the
    queries that count units across requests read each request's units as a set, and
    dropping repeats here, once per batch, spared DuckDB's ``list_distinct`` on every
    sampled request (twice 4 s on a scale-0.1 store). Request and hash are mixed into
    one 64-bit key: two different pairs share one with a chance of 1 in 2^64.
    """
    if not len(parents):
        return parents, hashes
    keys = hashes.view(np.uint64) ^ (parents.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15))
    # the lowest position of each key (np.unique's return_index, whose stable sort was
    # about 40 % slower)
    order = np.argsort(keys)
    sorted_keys = keys[order]
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    first = np.sort(np.minimum.reduceat(order, starts))
    return parents[first], hashes[first]


def template_units(batch: pa.RecordBatch | pa.Table, *, last: pa.Array | None = None,
                   last_chars: pa.Array | None = None, min_chars: int = 40,
                   max_units: int = 32, head: int = 3000, tail: int = 1000,
                   sketch: SketchParams | None = None) -> TemplateUnits:
    """Cut each request (system prompt + new turn) into hashed units.

    With ``sketch``, each unit also gives its near-duplicate tokens (MinHash LSH
    bands of its words, ``signals.near_duplicates``), listed among the units: a
    reworded template line still shares tokens with the original.

    Only the first ``head`` and last ``tail`` characters of the new turn are
    read, and at most ``max_units`` units are kept per request (the first
    ones), so the cost per request is bounded. ``last`` is the new turn's
    text when the caller has it already (``last_message_text``), ``last_chars``
    its length in characters.
    """
    system = batch.column("system")
    if isinstance(system, pa.ChunkedArray):
        system = system.combine_chunks()
    if last is None:
        last = last_message_text(batch)
    text = _normalize(pc.binary_join_element_wise(system.fill_null(""),
                                                  window(last, head, tail, chars=last_chars),
                                                  "\n"))
    text_hash = hash_strings(text).view(np.int64)
    pieces = pc.split_pattern_regex(text, _SPLIT)
    flat = pc.utf8_trim_whitespace(pc.list_flatten(pieces))
    parents = np.asarray(pc.list_parent_indices(pieces))
    keep = np.asarray(pc.greater_equal(pc.utf8_length(flat), min_chars).to_numpy(
        zero_copy_only=False), dtype=bool)
    flat = flat.filter(pa.array(keep))
    parents = parents[keep]
    n = len(text)
    if len(parents):
        # rank of each unit within its request, to cap units per request
        starts = np.searchsorted(parents, np.arange(n))
        rank = np.arange(len(parents)) - starts[parents]
        capped = rank < max_units
        flat = flat.filter(pa.array(capped))
        parents = parents[capped]
    # each distinct unit of the batch hashed (and sketched) once
    encoded = pc.dictionary_encode(flat)
    copy_of = np.asarray(encoded.indices, dtype=np.int64)
    hashes = hash_strings(encoded.dictionary).view(np.int64)[copy_of]
    if sketch is not None and len(parents):
        of_unit, tokens = near_duplicate_tokens(encoded.dictionary, sketch, copy_of=copy_of)
        parents = np.concatenate([parents, parents[of_unit]])
        order = np.argsort(parents, kind="stable")
        parents = parents[order]
        hashes = np.concatenate([hashes, tokens])[order]
    parents, hashes = _distinct_per_request(parents, hashes)
    counts = np.bincount(parents, minlength=n) if len(parents) else np.zeros(n, dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    units = pa.ListArray.from_arrays(pa.array(offsets), pa.array(hashes, pa.int64()))
    return TemplateUnits(units, text_hash)
