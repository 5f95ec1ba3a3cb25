"""Ingest throughput and peak memory, JSONL.gz and Parquet, at 0.5M and 2M exchanges.

    .venv/bin/python benchmarks/ingest.py [--sizes 500000,2000000] [--corpora DIR]

Exchanges are built from the real prompt corpora (prompts of a few hundred to a
few thousand characters, some multi-turn) and cached in benchmarks/out/. Each
ingest runs in a fresh process (peak RSS is that process's). The baseline, in
the same run, is DuckDB loading the same file with its own reader and no
validation (``CREATE TABLE AS SELECT * FROM read_parquet/read_json``): the
ratio shows what validation, quarantine and dedupe cost on top of a raw load.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import duckdb
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import measure, mib

from distillguard.corpora import corpus_files, find_corpora_dir, iter_corpus

OUT = Path(__file__).resolve().parent / "out"


def prompts_table(corpora: Path) -> pa.Table:
    rows = []
    for path in corpus_files(corpora).values():
        for item in iter_corpus(path):
            if 200 <= len(item["prompt"]) <= 4000:
                rows.append({"prompt": item["prompt"], "system": item.get("system"),
                             "response": (item.get("response") or "")[:2000] or None})
    return pa.Table.from_pylist(rows)


def generate(n: int, corpora: Path) -> tuple[Path, Path]:
    """Write n exchanges as JSONL.gz and Parquet (cached by size)."""
    OUT.mkdir(exist_ok=True)
    gz, pq = OUT / f"exchanges-{n}.jsonl.gz", OUT / f"exchanges-{n}.parquet"
    if gz.exists() and pq.exists():
        return gz, pq
    t0 = time.perf_counter()
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
                   TO '{pq}' (FORMAT parquet, ROW_GROUP_SIZE 65536)""")
    print(f"  generated {n:,} exchanges in {time.perf_counter() - t0:.0f}s "
          f"({mib(gz.stat().st_size)} gz, {mib(pq.stat().st_size)} parquet)", flush=True)
    return gz, pq


def run_ingest(path: Path, db: Path) -> dict:
    db.unlink(missing_ok=True)
    return measure(f"""
        from pathlib import Path
        from distillguard.engines import ExchangeStore
        with ExchangeStore({str(db)!r}) as store:
            report = store.ingest([Path({str(path)!r})])
        result = report.inserted
    """)


def run_baseline(path: Path, db: Path) -> dict:
    db.unlink(missing_ok=True)
    reader = "read_parquet" if path.suffix == ".parquet" else "read_json"
    return measure(f"""
        import duckdb
        con = duckdb.connect({str(db)!r}, config={{"memory_limit": "1GB"}})
        con.execute("SET enable_progress_bar = false")
        con.execute("CREATE TABLE t AS SELECT * FROM {reader}('{path}')")
        result = con.execute("SELECT count(*) FROM t").fetchone()[0]
    """)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="500000,2000000")
    parser.add_argument("--corpora", default=None)
    args = parser.parse_args()
    corpora = find_corpora_dir(args.corpora)
    db = OUT / "bench.duckdb"
    print("ingest benchmark (each figure from a fresh process)")
    print(f"{'input':<28}{'exchanges':>11}{'seconds':>9}{'exch/s':>10}{'peak RSS':>11}"
          f"{'baseline/s':>12}{'ratio':>7}")
    for n in (int(s) for s in args.sizes.split(",")):
        for path in generate(n, corpora):
            ours = run_ingest(path, db)
            base = run_baseline(path, db)
            rate = ours["result"] / ours["seconds"]
            base_rate = base["result"] / base["seconds"]
            print(f"{path.name:<28}{ours['result']:>11,}{ours['seconds']:>9.1f}{rate:>10,.0f}"
                  f"{mib(ours['peak_rss_bytes']):>11}{base_rate:>12,.0f}{rate / base_rate:>7.2f}",
                  flush=True)
    for suffix in ("", ".wal"):
        Path(str(db) + suffix).unlink(missing_ok=True)


if __name__ == "__main__":
    main()
