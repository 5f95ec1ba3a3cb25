"""Output safeguards that make harvested answers less useful for training, and the tools
that later prove where a suspect model learned.

Everything exported here needs numpy, scipy and ``tokenizers`` only. The ``transformers``
logits processor and the tiny models of the radioactivity experiment need the
``provenance`` extra and are imported from their modules:
``distillguard.safeguards.logits_processor``, ``.tiny_lm`` and ``.experiment``; the numpy
bigram models of the fast radioactivity checks are in ``.bigram_lm``.
"""

from distillguard.safeguards.canaries import (
    Canary,
    CanaryHit,
    CanaryReport,
    Exposure,
    add_decoy_tool,
    append_signature,
    canary_check,
    canary_exposure,
    canary_for,
    canary_queries,
    decoy_tool,
    normalize_text,
    should_mark,
)
from distillguard.safeguards.corpus_text import LEGIT_CORPORA, corpus_texts, split_of
from distillguard.safeguards.detect import (
    DEFAULT_ALPHA,
    TEST_NAME,
    WatermarkScore,
    binomial_score,
    binomial_scores,
    distinct_pairs,
    score_ids,
    score_many,
    score_pooled,
    score_texts,
)
from distillguard.safeguards.plan import (
    NO_SAFEGUARDS,
    VERDICTS,
    SafeguardPlan,
    SafeguardPolicy,
    VerdictSafeguards,
    load_safeguard_policy,
    plan_for,
)
from distillguard.safeguards.radioactivity import (
    black_box_count_test,
    black_box_test,
    chernoff_p_value,
    green_mass_test,
    open_model_test,
    prompt_pairs,
    weighted_green_score,
)
from distillguard.safeguards.reasoning import (
    SummaryParams,
    answer_only,
    split_steps,
    summarize_reasoning,
)
from distillguard.safeguards.texts_io import RejectedLine, TextsRead, read_texts
from distillguard.safeguards.tokenizer import (
    DEFAULT_VOCAB_SIZE,
    END_OF_TEXT,
    encode_texts,
    load_tokenizer,
    train_tokenizer,
)
from distillguard.safeguards.watermark import (
    DEFAULT_WATERMARK,
    WATERMARK_HEADER,
    WatermarkParams,
    bias_logits,
    context_token_hashes,
    derive_key,
    green_mask,
    key_seed,
    pair_hashes,
    parse_watermark_header,
    watermark_header,
)

__all__ = [
    "DEFAULT_ALPHA",
    "DEFAULT_VOCAB_SIZE",
    "DEFAULT_WATERMARK",
    "END_OF_TEXT",
    "LEGIT_CORPORA",
    "NO_SAFEGUARDS",
    "TEST_NAME",
    "VERDICTS",
    "WATERMARK_HEADER",
    "Canary",
    "CanaryHit",
    "CanaryReport",
    "Exposure",
    "RejectedLine",
    "SafeguardPlan",
    "SafeguardPolicy",
    "SummaryParams",
    "TextsRead",
    "VerdictSafeguards",
    "WatermarkParams",
    "WatermarkScore",
    "add_decoy_tool",
    "answer_only",
    "append_signature",
    "bias_logits",
    "binomial_score",
    "binomial_scores",
    "black_box_count_test",
    "black_box_test",
    "canary_check",
    "canary_exposure",
    "canary_for",
    "canary_queries",
    "chernoff_p_value",
    "context_token_hashes",
    "corpus_texts",
    "decoy_tool",
    "derive_key",
    "distinct_pairs",
    "encode_texts",
    "green_mask",
    "green_mass_test",
    "key_seed",
    "load_safeguard_policy",
    "load_tokenizer",
    "normalize_text",
    "open_model_test",
    "pair_hashes",
    "parse_watermark_header",
    "plan_for",
    "prompt_pairs",
    "read_texts",
    "score_ids",
    "score_many",
    "score_pooled",
    "score_texts",
    "should_mark",
    "split_of",
    "split_steps",
    "summarize_reasoning",
    "train_tokenizer",
    "watermark_header",
    "weighted_green_score",
]
