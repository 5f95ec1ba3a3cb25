"""DDL of the exchange store: the log format v1 as DuckDB tables."""

from __future__ import annotations

__all__ = ["CREATE_TABLES"]

# Timestamps are stored as TIMESTAMP holding UTC (DuckDB's TIMESTAMPTZ would
# make reads depend on the session time zone).
CREATE_TABLES = """
CREATE TABLE IF NOT EXISTS exchanges (
    request_id VARCHAR NOT NULL,
    ts TIMESTAMP NOT NULL,
    account_id VARCHAR NOT NULL,
    model VARCHAR NOT NULL,
    messages STRUCT(role VARCHAR, content VARCHAR)[] NOT NULL,
    system VARCHAR,
    org_id VARCHAR,
    api_key_id VARCHAR,
    account_created TIMESTAMP,
    account_tier VARCHAR,
    verified BOOLEAN,
    payment_fingerprint VARCHAR,
    ip VARCHAR,
    asn BIGINT,
    country VARCHAR,
    user_agent VARCHAR,
    client_fingerprint VARCHAR,
    tools VARCHAR[],
    has_image BOOLEAN,
    conversation_id VARCHAR,
    response VARCHAR,
    reasoning VARCHAR,
    input_tokens BIGINT,
    output_tokens BIGINT,
    status BIGINT,
    extra JSON,
    source_file VARCHAR NOT NULL,
    source_line BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS quarantine (
    source_file VARCHAR NOT NULL,
    source_line BIGINT NOT NULL,
    code VARCHAR NOT NULL,
    reason VARCHAR NOT NULL,
    raw VARCHAR NOT NULL,
    raw_encoding VARCHAR NOT NULL,
    raw_bytes BIGINT NOT NULL,
    quarantined_at TIMESTAMP NOT NULL DEFAULT now()::TIMESTAMP
);
CREATE TABLE IF NOT EXISTS ingested_files (
    path VARCHAR PRIMARY KEY,
    size BIGINT NOT NULL,
    mtime_ns BIGINT NOT NULL,
    lines_done BIGINT NOT NULL,
    done BOOLEAN NOT NULL,
    updated_at TIMESTAMP NOT NULL DEFAULT now()::TIMESTAMP
);
"""
