"""The watermark as a ``transformers`` ``LogitsProcessor`` (needs the ``provenance`` extra).

    from transformers import LogitsProcessorList
    processor = WatermarkLogitsProcessor("campaign-key", vocab_size=model.config.vocab_size)
    model.generate(ids, do_sample=True, logits_processor=LogitsProcessorList([processor]))

A serving stack behind the gateway builds it from the request's watermark header:
``WatermarkLogitsProcessor.from_header(headers.get(WATERMARK_HEADER), vocab_size=...)``
(None when the request carries no header: generate as usual).
"""

from __future__ import annotations

import numpy as np
import torch
from transformers import LogitsProcessor

from distillguard.errors import RuleValidationError
from distillguard.safeguards.watermark import (
    DEFAULT_WATERMARK,
    WatermarkParams,
    green_mask,
    parse_watermark_header,
)

__all__ = ["WatermarkLogitsProcessor", "green_table"]

# Below this vocabulary size a one-token context's green lists are computed once as a
# (vocab, vocab) table (4 MB at 2,048 tokens); above it, per step.
_TABLE_MAX_VOCAB = 8192


def green_table(key: str, vocab_size: int, params: WatermarkParams = DEFAULT_WATERMARK
                ) -> torch.Tensor:
    """Every one-token context's green list: bool (vocab, vocab), row = previous token."""
    if params.context_width != 1:
        msg = "a green table exists only for a one-token context"
        raise RuleValidationError(msg)
    return torch.from_numpy(green_mask(np.arange(vocab_size)[:, None], key, vocab_size, params))


class WatermarkLogitsProcessor(LogitsProcessor):
    """Adds ``params.delta`` to the logits of the green tokens of each row's context.

    Rows with fewer than ``context_width`` tokens so far are left unbiased.
    """

    def __init__(self, key: str, *, vocab_size: int,
                 params: WatermarkParams = DEFAULT_WATERMARK) -> None:
        self.key = key
        self.vocab_size = vocab_size
        self.params = params
        self._table: torch.Tensor | None = None
        if params.context_width == 1 and vocab_size <= _TABLE_MAX_VOCAB:
            self._table = green_table(key, vocab_size, params)

    @classmethod
    def from_header(cls, value: str | None, *, vocab_size: int
                    ) -> WatermarkLogitsProcessor | None:
        """The processor a gateway's watermark header asks for; None without a header."""
        if not value:
            return None
        key, params = parse_watermark_header(value)
        return cls(key, vocab_size=vocab_size, params=params)

    def mask(self, input_ids: torch.LongTensor, width: int) -> torch.Tensor:
        """Green lists (batch, width) for the last tokens of ``input_ids``."""
        h = self.params.context_width
        if self._table is not None:
            rows = self._table[input_ids[:, -1]]
        else:
            rows = torch.from_numpy(green_mask(input_ids[:, -h:].cpu().numpy(), self.key,
                                               self.vocab_size, self.params))
        if width > rows.shape[1]:
            rows = torch.nn.functional.pad(rows, (0, width - rows.shape[1]))
        return rows[:, :width].to(input_ids.device)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor
                 ) -> torch.FloatTensor:
        if input_ids.shape[1] < self.params.context_width or self.params.delta == 0.0:
            return scores
        mask = self.mask(input_ids, scores.shape[-1])
        return scores + self.params.delta * mask.to(scores.dtype)  # type: ignore[return-value]
