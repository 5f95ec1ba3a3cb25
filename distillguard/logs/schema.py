"""The exchange-log format v1 (shared/spec/exchange-log.md) as an Arrow schema.

Every reader yields record batches of exactly ``EXCHANGE_SCHEMA``: the spec's
fields in the spec's order, then ``extra`` (unknown fields, kept as a JSON
object text) and the record's provenance (``source_file``, ``source_line``) so
an analyst can go from any finding back to the raw line.
"""

from __future__ import annotations

import pyarrow as pa

__all__ = [
    "ACCOUNT_TIERS",
    "EXCHANGE_SCHEMA",
    "MESSAGE_ROLES",
    "MESSAGE_TYPE",
    "OPTIONAL_FIELDS",
    "PROVENANCE_FIELDS",
    "REQUIRED_FIELDS",
    "SPEC_FIELDS",
    "TS_MAX_MS",
    "TS_MIN_MS",
    "TS_TYPE",
    "empty_batch",
]

TS_TYPE = pa.timestamp("ms", tz="UTC")
# Timestamps outside 2000..2200 are typos or seconds-vs-milliseconds mix-ups:
# no LLM API exchange happened before 2000.
TS_MIN_MS = 946_684_800_000  # 2000-01-01T00:00:00Z
TS_MAX_MS = 7_258_118_400_000  # 2200-01-01T00:00:00Z
MESSAGE_TYPE = pa.struct([("role", pa.string()), ("content", pa.string())])
MESSAGE_ROLES = frozenset({"user", "assistant", "tool"})
ACCOUNT_TIERS = frozenset({"free", "pro", "team", "enterprise", "startup", "edu", "research"})

REQUIRED_FIELDS: tuple[pa.Field, ...] = (
    pa.field("request_id", pa.string(), nullable=False),
    pa.field("ts", TS_TYPE, nullable=False),
    pa.field("account_id", pa.string(), nullable=False),
    pa.field("model", pa.string(), nullable=False),
    pa.field("messages", pa.list_(MESSAGE_TYPE), nullable=False),
)

OPTIONAL_FIELDS: tuple[pa.Field, ...] = (
    pa.field("system", pa.string()),
    pa.field("org_id", pa.string()),
    pa.field("api_key_id", pa.string()),
    pa.field("account_created", TS_TYPE),
    pa.field("account_tier", pa.string()),
    pa.field("verified", pa.bool_()),
    pa.field("payment_fingerprint", pa.string()),
    pa.field("ip", pa.string()),
    pa.field("asn", pa.int64()),
    pa.field("country", pa.string()),
    pa.field("user_agent", pa.string()),
    pa.field("client_fingerprint", pa.string()),
    pa.field("tools", pa.list_(pa.string())),
    pa.field("has_image", pa.bool_()),
    pa.field("conversation_id", pa.string()),
    pa.field("response", pa.string()),
    pa.field("reasoning", pa.string()),
    pa.field("input_tokens", pa.int64()),
    pa.field("output_tokens", pa.int64()),
    pa.field("status", pa.int64()),
)

PROVENANCE_FIELDS: tuple[pa.Field, ...] = (
    pa.field("extra", pa.string()),
    pa.field("source_file", pa.string(), nullable=False),
    pa.field("source_line", pa.int64(), nullable=False),
)

SPEC_FIELDS: tuple[pa.Field, ...] = REQUIRED_FIELDS + OPTIONAL_FIELDS
EXCHANGE_SCHEMA = pa.schema(SPEC_FIELDS + PROVENANCE_FIELDS)


def empty_batch() -> pa.RecordBatch:
    """A batch of ``EXCHANGE_SCHEMA`` with no rows."""
    return pa.RecordBatch.from_pylist([], schema=EXCHANGE_SCHEMA)
