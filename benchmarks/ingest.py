"""Ingest throughput and peak memory, JSON Lines (gzip) and Parquet, on two kinds of log.

    .venv/bin/python benchmarks/ingest.py [--sizes 500000,2000000] [--sets exchanges,conversations]
                                          [--formats jsonl.gz,parquet] [--repeat 3] [--corpora DIR]

Two sets of exchanges, both built from the real prompt corpora and cached in
benchmarks/out/:

- ``exchanges``: one prompt of 200-4000 characters per request (one in five with
  a short earlier turn), few optional fields, timestamps alternating between
  RFC 3339 strings and epoch milliseconds;
- ``conversations``: what a chat API's log looks like: every user turn of the
  corpora's multi-turn conversations (ShareGPT, HH-RLHF) sent with the history
  before it, records of 1-8 KB (about 2.4 KB on average), 1.7 messages per
  request on average (opening turns mixed with long multi-turn ones), every
  optional field a gateway logs, RFC 3339 timestamps.

Each ingest runs in a fresh process (peak RSS is that process's). The baseline,
in the same run, is DuckDB loading the same file with its own reader and no
validation (``CREATE TABLE AS SELECT * FROM read_json/read_parquet``); ``x duckdb``
is our time over its time (below 1: faster than DuckDB's own load).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import random
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import measure, mib

from distillguard.corpora import corpus_files, find_corpora_dir, iter_corpus
from distillguard.logs import EXCHANGE_SCHEMA

OUT = Path(__file__).resolve().parent / "out"
FORMATS = ("jsonl.gz", "parquet")
SETS = ("exchanges", "conversations")


def prompts_table(corpora: Path) -> pa.Table:
    rows = []
    for path in corpus_files(corpora).values():
        for item in iter_corpus(path):
            if 200 <= len(item["prompt"]) <= 4000:
                rows.append({"prompt": item["prompt"], "system": item.get("system"),
                             "response": (item.get("response") or "")[:2000] or None})
    return pa.Table.from_pylist(rows)


def generate_exchanges(n: int, corpora: Path, gz: Path, parquet: Path) -> None:
    """The first set: one prompt per request, built in DuckDB."""
    prompts = prompts_table(corpora)  # noqa: F841 - read by DuckDB below
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    con.execute(f"""
        CREATE TABLE ex AS
        WITH p AS (SELECT row_number() OVER () - 1 AS idx, * FROM prompts),
        g AS (SELECT i, hash(i) % (SELECT count(*) FROM p) AS idx,
                     hash(i * 7 + 1) % 20000 AS acct FROM range({n}) r(i))
        SELECT 'req-' || md5(i::VARCHAR) AS request_id,
               1772323200000 + i * 300 AS ts_ms,
               'acct-' || acct AS account_id,
               CASE WHEN i % 4 = 0 THEN 'model-b2' ELSE 'model-b1' END AS model,
               CASE WHEN i % 5 = 0 THEN [
                    {{'role': 'user', 'content': 'Earlier question about the same topic?'}},
                    {{'role': 'assistant', 'content': coalesce(p.response, 'Sure.')}},
                    {{'role': 'user', 'content': p.prompt}}]
                    ELSE [{{'role': 'user', 'content': p.prompt}}] END AS messages,
               p.system,
               'pay-' || (acct % 5000) AS payment_fingerprint,
               '198.51.' || (acct % 256) || '.' || (i % 256) AS ip,
               64500 + acct % 50 AS asn,
               'python-httpx/0.28' AS user_agent,
               ['search', 'calculator'][1:(i % 3)::INT] AS tools,
               p.response,
               length(p.prompt) // 4 AS input_tokens,
               length(coalesce(p.response, '')) // 4 AS output_tokens,
               200 AS status
        FROM g JOIN p USING (idx)
    """)
    con.execute(f"""COPY (SELECT * EXCLUDE (ts_ms),
                    CASE WHEN ts_ms % 2 = 0 THEN to_json(ts_ms)
                         ELSE to_json(strftime(make_timestamp(ts_ms * 1000), '%Y-%m-%dT%H:%M:%S.%gZ'))
                    END AS ts FROM ex)
                   TO '{gz}' (FORMAT json, COMPRESSION gzip)""")
    con.execute(f"""COPY (SELECT * EXCLUDE (ts_ms), make_timestamp(ts_ms * 1000) AS ts FROM ex)
                   TO '{parquet}' (FORMAT parquet, ROW_GROUP_SIZE 65536)""")


CONVERSATION_CORPORA = ("sharegpt", "hh_rlhf")
SYSTEM_CORPORA = ("orca_style", "ultrafeedback")
RECORD_BYTES = (1024, 8192)
MEAN_MESSAGES = 1.7
_OTHER_FIELDS_BYTES = 560  # what a record's other fields add to its text, about
Request = tuple[list[dict[str, str]], str]


def conversation_requests(corpora: Path) -> tuple[list[Request], list[Request], list[str]]:
    """What a chat client sends for the corpora's conversations: each user turn with the
    history before it, and the reply. Returns (opening turns, later turns, system prompts),
    keeping the requests whose record is 1-8 KB."""
    files = corpus_files(corpora)
    opening: list[Request] = []
    later: list[Request] = []
    low, high = RECORD_BYTES
    for name in CONVERSATION_CORPORA:
        for item in iter_corpus(files[name]):
            messages = item.get("messages") or [
                {"role": "user", "content": item["prompt"]},
                {"role": "assistant", "content": item.get("response") or ""}]
            text = 0
            for j, message in enumerate(messages):
                text += len(message["content"])
                if message["role"] != "user":
                    continue
                reply = messages[j + 1]["content"] if j + 1 < len(messages) else ""
                if low <= _OTHER_FIELDS_BYTES + text + len(reply) <= high:
                    (later if j else opening).append((messages[: j + 1], reply))
    systems = sorted({item["system"] for name in SYSTEM_CORPORA
                      for item in iter_corpus(files[name]) if item.get("system")})
    return opening, later, systems


def conversation_records(n: int, corpora: Path, seed: int = 13) -> Iterator[dict[str, Any]]:
    """``n`` chat-API exchanges, as a gateway would log them."""
    opening, later, systems = conversation_requests(corpora)
    rng = random.Random(seed)
    later_messages = statistics.mean(len(m) for m, _ in later)
    share_opening = (later_messages - MEAN_MESSAGES) / (later_messages - 1)
    tiers = ("free", "pro", "team", "enterprise")
    agents = ("python-httpx/0.28.1", "OpenAI/Python 1.82.0", "Anthropic/Python 0.52.0",
              "node-fetch/3.3.2", "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15")
    start_ms = 1772323200000
    for i in range(n):
        messages, reply = rng.choice(opening if rng.random() < share_opening else later)
        account = rng.randrange(40_000)
        digest = hashlib.md5(i.to_bytes(8, "little"), usedforsecurity=False).hexdigest()
        ts = start_ms + i * 37 + rng.randrange(30)
        record: dict[str, Any] = {
            "request_id": f"req_{digest}",
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts // 1000))
            + f".{ts % 1000:03d}Z",
            "account_id": f"acct_{account:06d}",
            "org_id": f"org_{account // 7:05d}",
            "api_key_id": f"key_{account:06d}_{account % 3}",
            "account_tier": tiers[account % 4],
            "verified": account % 5 != 0,
            "model": "model-b2" if i % 4 == 0 else "model-b1",
            "messages": messages,
            "ip": f"{10 + account % 200}.{account // 200 % 256}.{account % 256}.{i % 250 + 1}",
            "asn": 64500 + account % 900,
            "country": ("US", "DE", "IN", "BR", "JP", "GB", "FR", "KR")[account % 8],
            "user_agent": agents[account % len(agents)],
            "client_fingerprint": f"t13d1516h2_{account % 977:04x}_e5627efa2ab1",
            "response": reply,
            "input_tokens": sum(len(m["content"]) for m in messages) // 4,
            "output_tokens": len(reply) // 4,
            "status": 200,
        }
        if account % 3 == 0:
            record["system"] = systems[account % len(systems)]
        if len(messages) > 1:
            record["conversation_id"] = f"conv_{digest[:16]}"
        yield record


def generate_conversations(n: int, corpora: Path, gz: Path, parquet: Path) -> None:
    """The second set: chat traffic, written record by record."""
    schema = pa.schema([EXCHANGE_SCHEMA.field(f.name) for f in EXCHANGE_SCHEMA
                        if f.name not in ("extra", "source_file", "source_line", "tools",
                                          "has_image", "reasoning", "account_created",
                                          "payment_fingerprint")])
    rows: list[dict[str, Any]] = []
    with gzip.open(gz, "wb", compresslevel=6) as out, pq.ParquetWriter(parquet, schema) as writer:
        for record in conversation_records(n, corpora):
            out.write(orjson.dumps(record) + b"\n")
            rows.append(record)
            if len(rows) == 65536:
                writer.write_table(_parquet_rows(rows, schema))
                rows = []
        if rows:
            writer.write_table(_parquet_rows(rows, schema))


def _parquet_rows(rows: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    where = schema.get_field_index("ts")
    as_text = schema.set(where, schema.field(where).with_type(pa.string()))
    table = pa.Table.from_pylist(rows, schema=as_text)
    return table.set_column(where, schema.field(where), table.column(where).cast(
        schema.field(where).type))


def generate(name: str, n: int, corpora: Path) -> dict[str, Path]:
    """The files of set ``name`` with ``n`` exchanges, by format (cached)."""
    OUT.mkdir(exist_ok=True)
    files = {fmt: OUT / f"{name}-{n}.{fmt}" for fmt in FORMATS}
    if all(p.exists() for p in files.values()):
        return files
    t0 = time.perf_counter()
    tmp = {fmt: p.with_name(p.name + ".tmp") for fmt, p in files.items()}
    maker = generate_exchanges if name == "exchanges" else generate_conversations
    maker(n, corpora, tmp["jsonl.gz"], tmp["parquet"])
    for fmt, p in tmp.items():
        p.replace(files[fmt])
    print(f"  generated {n:,} {name} in {time.perf_counter() - t0:.0f}s ("
          + ", ".join(f"{mib(p.stat().st_size)} {fmt}" for fmt, p in files.items()) + ")",
          flush=True)
    return files


def run_ingest(path: Path, db: Path) -> dict:
    _remove_store(db)
    return measure(f"""
        from pathlib import Path
        from distillguard.engines import ExchangeStore
        with ExchangeStore({str(db)!r}) as store:
            started = time.perf_counter()
            report = store.ingest([Path({str(path)!r})])
            call = time.perf_counter() - started
        result = [report.inserted, call]
    """)


def run_baseline(path: Path, db: Path) -> dict:
    _remove_store(db)
    reader = "read_parquet" if path.suffix == ".parquet" else "read_json"
    return measure(f"""
        import duckdb
        con = duckdb.connect({str(db)!r}, config={{"memory_limit": "1GB"}})
        con.execute("SET enable_progress_bar = false")
        con.execute("CREATE TABLE t AS SELECT * FROM {reader}('{path}')")
        result = con.execute("SELECT count(*) FROM t").fetchone()[0]
    """)


def _remove_store(db: Path) -> None:
    import shutil

    for suffix in ("", ".wal"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    shutil.rmtree(str(db) + ".parts", ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="500000,2000000")
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("--repeat", type=int, default=1, help="measure each file this many times")
    parser.add_argument("--corpora", default=None)
    args = parser.parse_args()
    corpora = find_corpora_dir(args.corpora)
    db = OUT / "bench.duckdb"
    print("ingest benchmark (each figure from a fresh process; x duckdb = our time / DuckDB's;"
          " ingest() = the call alone, without the interpreter's start and imports)")
    print(f"{'input':<34}{'exchanges':>11}{'seconds':>9}{'exch/s':>10}{'ingest()/s':>11}"
          f"{'peak RSS':>11}{'duckdb s':>10}{'duckdb/s':>10}{'x duckdb':>9}")
    for name in args.sets.split(","):
        for n in (int(s) for s in args.sizes.split(",")):
            files = generate(name, n, corpora)
            for fmt in args.formats.split(","):
                for _ in range(args.repeat):
                    _report(files[fmt], run_ingest(files[fmt], db), run_baseline(files[fmt], db))
    _remove_store(db)


def _report(path: Path, ours: dict, base: dict) -> None:
    inserted, call = ours["result"]
    rate = inserted / ours["seconds"]
    base_rate = base["result"] / base["seconds"]
    print(f"{path.name:<34}{inserted:>11,}{ours['seconds']:>9.1f}{rate:>10,.0f}"
          f"{inserted / call:>11,.0f}{mib(ours['peak_rss_bytes']):>11}{base['seconds']:>10.1f}"
          f"{base_rate:>10,.0f}{ours['seconds'] / base['seconds']:>9.2f}", flush=True)


if __name__ == "__main__":
    main()
