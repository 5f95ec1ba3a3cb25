"""Pull the texts a signal reads out of an exchange batch, vectorized.

A request carries its whole conversation; what it *asks for* is the system
prompt and the last message (the new turn). Earlier turns tell whether a
conversation really continues.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["last_message_text", "prior_turns", "request_text", "window"]


def _messages(batch: pa.RecordBatch | pa.Table) -> pa.ListArray:
    column = batch.column("messages")
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    return column


def last_message_text(batch: pa.RecordBatch | pa.Table) -> pa.Array:
    """The content of each request's last message ("" when there is none).

    >>> import pyarrow as pa
    >>> from distillguard.logs.schema import MESSAGE_TYPE
    >>> b = pa.table({"messages": pa.array([[{"role": "user", "content": "a"},
    ...     {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}]],
    ...     pa.list_(MESSAGE_TYPE))})
    >>> last_message_text(b).to_pylist()
    ['c']
    """
    messages = _messages(batch)
    if len(messages) == 0:
        return pa.array([], pa.string())
    lengths = pc.list_value_length(messages).fill_null(0).to_numpy(zero_copy_only=False)
    flat = pc.list_flatten(messages)
    starts = np.asarray(messages.offsets)[:-1] - messages.offsets[0].as_py()
    has_last = lengths > 0
    idx = np.where(has_last, starts + lengths - 1, 0)
    contents = flat.field("content")
    if len(contents) == 0:
        return pa.array([""] * len(messages), pa.string())
    taken = contents.take(pa.array(idx))
    return pc.if_else(pa.array(has_last), taken, "").fill_null("")


def prior_turns(batch: pa.RecordBatch | pa.Table) -> np.ndarray:
    """How many messages came before the new turn (0 for a fresh request)."""
    lengths = pc.list_value_length(_messages(batch)).fill_null(0).to_numpy(zero_copy_only=False)
    return np.maximum(lengths - 1, 0).astype(np.int32)


def window(text: pa.Array, head: int, tail: int, *, chars: pa.Array | None = None) -> pa.Array:
    """The first ``head`` and last ``tail`` characters of each text, joined by a newline.

    Signals read this window rather than whole prompts: instructions sit at the
    start or end of a prompt, and a bounded window keeps the cost per exchange
    bounded whatever the prompt's length. ``chars`` is ``utf8_length(text)`` when the
    caller has it already.
    """
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    if chars is None:
        chars = pc.utf8_length(text)
    longer = np.flatnonzero(pc.greater(chars, head + tail).fill_null(False)
                            .to_numpy(zero_copy_only=False))
    if not len(longer):
        return text
    # only the long texts are cut (slicing walks each text's characters), then put
    # back among the others
    cut = text.take(pa.array(longer))
    first = pc.utf8_slice_codeunits(cut, 0, head)
    last = pc.utf8_slice_codeunits(cut, -tail) if tail else pa.array([""] * len(cut))
    joined = pc.binary_join_element_wise(first, last, "\n").cast(text.type)
    is_long = np.zeros(len(text), dtype=bool)
    is_long[longer] = True
    return pc.replace_with_mask(text, pa.array(is_long), joined)


def request_text(batch: pa.RecordBatch | pa.Table, *, last: pa.Array | None = None,
                 last_chars: pa.Array | None = None, head: int = 600, tail: int = 400) -> pa.Array:
    """System prompt and the window of the last message, lowercased: what a lexicon reads.

    ``last`` is the new turn's text when the caller has it already, ``last_chars``
    its length in characters.
    """
    system = batch.column("system")
    if isinstance(system, pa.ChunkedArray):
        system = system.combine_chunks()
    system = pc.utf8_slice_codeunits(system.fill_null(""), 0, head)
    last = window(last if last is not None else last_message_text(batch), head, tail,
                  chars=last_chars)
    return pc.utf8_lower(pc.binary_join_element_wise(system, last, "\n"))
