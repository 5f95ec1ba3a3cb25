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

from distillguard.compiled import compiled
from distillguard.signals.hashing import hash_strings
from distillguard.signals.near_duplicates import SketchParams, near_duplicate_tokens
from distillguard.signals.text import last_message_text, window

__all__ = ["TemplateUnits", "template_units"]

_SPLIT = r"\n+|[.!?;]\s+"
# What ``_SPLIT`` means byte by byte in RE2, for the compiled splitter: ``\s`` is
# ASCII ``[\t\n\f\r ]`` (no ``\v``), ``\d`` ASCII ``[0-9]``.
_SENTENCE_ENDS = np.zeros(256, np.bool_)
_SENTENCE_ENDS[list(b".!?;")] = True
_SPACES = np.zeros(256, np.bool_)
_SPACES[list(b"\t\n\f\r ")] = True
_SPLIT_OR_DIGIT = _SENTENCE_ENDS.copy()
_SPLIT_OR_DIGIT[list(b"\n0123456789")] = True
# The scan's batches (the sample of 8,192 exchanges: about 2,600 requests at scale 0.1)
# take the compiled splitter; the gateway's scoring batches (``batch_max``, 256 by
# default) keep the regexes, so that its worker never loads LLVM (140 MB resident,
# and a pause on its first large batch).
COMPILED_MIN_ROWS = 512


class TemplateUnits:
    """Per request: its distinct unit hashes (``units``, a list<int64> array) and ``text_hash``,
    the hash of the whole normalized request (equal for verbatim repeats).

    Hashes are 64-bit XXH3 read as signed integers: every engine (DuckDB, Spark,
    Parquet) has a signed 64-bit type, not all have an unsigned one.
    """

    def __init__(self, units: pa.ListArray, text_hash: np.ndarray) -> None:
        self.units = units
        self.text_hash = text_hash


def _fold_digits_and_split(offsets: np.ndarray, data: np.ndarray, valid: np.ndarray,
                           sentence_ends: np.ndarray, spaces: np.ndarray, special: np.ndarray
                           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                                      np.ndarray]:
    """Each string with its digit runs folded to ``0`` (``\\d+`` -> ``0``), and the folded
    strings cut at ``_SPLIT`` (leftmost-first: a newline run, or a sentence end with the
    whitespace after it), in one pass over the UTF-8 bytes.

    Returns the folded strings' offsets and bytes, then the pieces' offsets and bytes
    (pieces concatenated, separators dropped, empty pieces kept as RE2's split keeps
    them) and each piece's string. Invalid (null) strings fold to empty and give no
    piece, as a null's split is a null list.
    """
    n = len(offsets) - 1
    folded_offsets = np.zeros(n + 1, offsets.dtype)
    folded = np.empty(offsets[n] - offsets[0], np.uint8)
    piece_offsets = np.empty(len(folded) + n + 1, offsets.dtype)
    piece_offsets[0] = 0
    pieces = np.empty(len(folded), np.uint8)
    piece_parents = np.empty(len(folded) + n, np.int64)
    out = 0
    piece_out = 0
    n_pieces = 0
    for i in range(n):
        if valid[i]:
            in_digits = False
            # 0: inside a piece; 1: a newline run; 2: a sentence end (held back until the
            # next byte says whether it ends the piece); 3: the whitespace after one
            state = 0
            j = offsets[i]
            end = offsets[i + 1]
            while j < end:
                if state <= 1:
                    # most bytes: copied in runs up to the next digit, newline or end mark
                    run = j
                    while run < end and not special[data[run]]:
                        run += 1
                    if run > j:
                        length = run - j
                        folded[out:out + length] = data[j:run]
                        pieces[piece_out:piece_out + length] = data[j:run]
                        out += length
                        piece_out += length
                        in_digits = False
                        state = 0
                        j = run
                        continue
                byte = data[j]
                j += 1
                if 48 <= byte <= 57:
                    if in_digits:
                        continue
                    in_digits = True
                    byte = 48
                else:
                    in_digits = False
                folded[out] = byte
                out += 1
                if state == 1:
                    if byte == 10:
                        continue
                    state = 0
                elif state == 3:
                    if spaces[byte]:
                        continue
                    state = 0
                elif state == 2:
                    if spaces[byte]:
                        piece_parents[n_pieces] = i
                        n_pieces += 1
                        piece_offsets[n_pieces] = piece_out
                        state = 3
                        continue
                    pieces[piece_out] = folded[out - 2]
                    piece_out += 1
                    state = 0
                if byte == 10:
                    piece_parents[n_pieces] = i
                    n_pieces += 1
                    piece_offsets[n_pieces] = piece_out
                    state = 1
                elif sentence_ends[byte]:
                    state = 2
                else:
                    pieces[piece_out] = byte
                    piece_out += 1
            if state == 2:
                pieces[piece_out] = folded[out - 1]
                piece_out += 1
            piece_parents[n_pieces] = i
            n_pieces += 1
            piece_offsets[n_pieces] = piece_out
        folded_offsets[i + 1] = out
    # the pieces' offsets and parents were sized for the worst case (a piece per byte)
    return (folded_offsets, folded[:out], piece_offsets[:n_pieces + 1].copy(),
            pieces[:piece_out], piece_parents[:n_pieces].copy())


def _normalize_and_split(text: pa.Array) -> tuple[pa.Array, pa.Array, np.ndarray]:
    """``text`` lowercased with digit runs folded to ``0`` (the normalized requests), its
    pieces at ``_SPLIT`` and each piece's request.

    Batches under ``COMPILED_MIN_ROWS`` take RE2's regexes; larger ones the compiled
    splitter, which gives the same strings and pieces at a fraction of the regex
    engine's cost (the two regexes were a fifth of the template units' time).
    """
    lower = pc.utf8_lower(text)
    if len(lower) < COMPILED_MIN_ROWS:
        return _fold_and_split_by_regex(lower)
    return _fold_and_split_compiled(lower)


def _fold_and_split_by_regex(lower: pa.Array) -> tuple[pa.Array, pa.Array, np.ndarray]:
    normalized = pc.replace_substring_regex(lower, r"\d+", "0")
    pieces = pc.split_pattern_regex(normalized, _SPLIT)
    return normalized, pc.list_flatten(pieces), np.asarray(pc.list_parent_indices(pieces))


def _fold_and_split_compiled(lower: pa.Array) -> tuple[pa.Array, pa.Array, np.ndarray]:
    if pa.types.is_large_string(lower.type):
        kind, offset_type = pa.large_string(), np.int64
    else:
        kind, offset_type = pa.string(), np.int32
    n = len(lower)
    buffers = lower.buffers()
    offsets = np.frombuffer(buffers[1], offset_type)[lower.offset:lower.offset + n + 1]
    data = np.frombuffer(buffers[2], np.uint8) if buffers[2] is not None else np.zeros(0, np.uint8)
    valid = np.asarray(lower.is_valid())
    folded_offsets, folded, piece_offsets, pieces, parents = compiled(_fold_digits_and_split)(
        offsets, data, valid, _SENTENCE_ENDS, _SPACES, _SPLIT_OR_DIGIT)
    validity = pa.array(valid).buffers()[1] if lower.null_count else None
    normalized = pa.Array.from_buffers(kind, n, [validity, pa.py_buffer(folded_offsets),
                                                 pa.py_buffer(folded)], null_count=lower.null_count)
    split = pa.Array.from_buffers(kind, len(parents), [None, pa.py_buffer(piece_offsets),
                                                      pa.py_buffer(pieces)])
    return normalized, split, parents


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
    text, pieces, parents = _normalize_and_split(pc.binary_join_element_wise(
        system.fill_null(""), window(last, head, tail, chars=last_chars), "\n"))
    text_hash = hash_strings(text).view(np.int64)
    flat = pc.utf8_trim_whitespace(pieces)
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
