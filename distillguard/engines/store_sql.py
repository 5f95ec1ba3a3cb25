"""DDL of the exchange store's catalog (the DuckDB file).

Exchanges themselves live in Parquet parts beside the database file (see
``engines.store``); the catalog records which parts exist, the request ids
already stored (for dedupe), quarantined records, per-file progress, and the
analysts' decisions. Parquet inputs stored as they are are ``linked_parts`` (see
``engines.linked``).
"""

from __future__ import annotations

__all__ = ["CREATE_TABLES"]

CREATE_TABLES = """
CREATE TABLE IF NOT EXISTS store_meta (
    key VARCHAR PRIMARY KEY,
    value VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS parts (
    part VARCHAR PRIMARY KEY,
    rows BIGINT NOT NULL,
    source_file VARCHAR NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS linked_parts (
    part VARCHAR PRIMARY KEY,
    rows BIGINT NOT NULL,
    source_file VARCHAR NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS exchange_ids (
    id_hash UBIGINT NOT NULL,
    request_id VARCHAR NOT NULL,
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
    quarantined_at TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS ingested_files (
    path VARCHAR PRIMARY KEY,
    size BIGINT NOT NULL,
    mtime_ns BIGINT NOT NULL,
    lines_done BIGINT NOT NULL,
    done BOOLEAN NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
-- Analysts' decisions from the dashboard, append-only (the latest on a subject is in
-- force; verdict.decisions applies them to the next scan): evidence is the JSON
-- snapshot of what the analyst saw.
CREATE TABLE IF NOT EXISTS decisions (
    decision_id VARCHAR PRIMARY KEY,
    kind VARCHAR NOT NULL,
    subject VARCHAR NOT NULL,
    decision VARCHAR NOT NULL,
    note VARCHAR NOT NULL,
    analyst VARCHAR NOT NULL,
    decided_at TIMESTAMP NOT NULL,
    findings_generated_at VARCHAR,
    evidence VARCHAR NOT NULL
);
"""
