"""Reading other sources: the same exchanges as the native log, OTLP JSON spans, LiteLLM
payloads and OpenAI batch files, each read into exchange batches.

    .venv/bin/python benchmarks/adapters.py [--size 100000] [--repeat 3] [--corpora DIR]

The exchanges are the ``conversations`` set of benchmarks/ingest.py (chat-API records of
1-8 KB built from the real corpora), written four ways into benchmarks/out/adapters-N/:

- ``native``: the exchange log (JSON Lines), the baseline, read by the block reader;
- ``otlp``: what the gateway's ``--otlp-endpoint`` sends, as ``collect`` writes it: one
  export request of 256 GenAI chat spans per line, content in ``gen_ai.*.messages``;
- ``litellm``: one LiteLLM standard logging payload per line;
- ``openai-batch``: a batch input file and its output file (pairs found by ``custom_id``).

Each read (``logs.read_file`` to the last batch, imports not counted) runs in a fresh
process; the figure is the median of ``--repeat`` runs, and ``x native`` is the source's time over the native
log's, measured in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import measure, mib
from ingest import conversation_records

from distillguard.corpora import find_corpora_dir
from distillguard.logs.adapters.otlp_spans import exchange_span, traces_request

OUT = Path(__file__).resolve().parent / "out"
SPANS_PER_REQUEST = 256


def _ms(record: dict[str, Any]) -> int:
    return int(datetime.fromisoformat(record["ts"]).timestamp() * 1000)


def _chat(record: dict[str, Any]) -> list[dict[str, str]]:
    system = [{"role": "system", "content": record["system"]}] if record.get("system") else []
    return system + record["messages"]


def litellm_payload(record: dict[str, Any]) -> dict[str, Any]:
    return {"id": record["request_id"], "call_type": "acompletion", "status": "success",
            "startTime": _ms(record) / 1000, "endTime": _ms(record) / 1000 + 1.2,
            "model": record["model"], "model_group": record["model"],
            "metadata": {"user_api_key_user_id": record["account_id"],
                         "user_api_key_org_id": record["org_id"],
                         "user_api_key_hash": record["api_key_id"],
                         "requester_ip_address": record["ip"]},
            "messages": _chat(record),
            "response": {"object": "chat.completion", "choices": [
                {"index": 0, "message": {"role": "assistant", "content": record["response"]}}]},
            "prompt_tokens": record["input_tokens"],
            "completion_tokens": record["output_tokens"]}


def batch_lines(record: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    custom_id = record["request_id"]
    request = {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions",
               "body": {"model": record["model"], "user": record["account_id"],
                        "messages": _chat(record)}}
    response = {"id": f"batch_{custom_id}", "custom_id": custom_id, "error": None,
                "response": {"status_code": 200, "request_id": custom_id, "body": {
                    "created": _ms(record) // 1000, "model": record["model"],
                    "choices": [{"index": 0, "message": {"role": "assistant",
                                                         "content": record["response"]}}],
                    "usage": {"prompt_tokens": record["input_tokens"],
                              "completion_tokens": record["output_tokens"]}}}}
    return request, response


def generate(n: int, corpora: Path) -> dict[str, Path]:
    folder = OUT / f"adapters-{n}"
    paths = {"native": folder / "native" / "exchanges.jsonl",
             "otlp": folder / "otlp" / "spans.jsonl",
             "litellm": folder / "litellm" / "payloads.jsonl",
             "openai-batch": folder / "openai-batch" / "input.jsonl"}
    if all(p.exists() for p in paths.values()):
        return paths
    for p in paths.values():
        p.parent.mkdir(parents=True, exist_ok=True)
    output = folder / "openai-batch" / "output.jsonl"
    spans: list[dict[str, Any]] = []
    with open(paths["native"], "wb") as native, open(paths["otlp"], "wb") as otlp, \
            open(paths["litellm"], "wb") as litellm, \
            open(paths["openai-batch"], "wb") as requests, open(output, "wb") as responses:
        for record in conversation_records(n, corpora):
            native.write(orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE))
            spans.append(exchange_span({**record, "ts": _ms(record)}))
            if len(spans) == SPANS_PER_REQUEST:
                otlp.write(orjson.dumps(traces_request(spans, {"service.name": "gw"}),
                                        option=orjson.OPT_APPEND_NEWLINE))
                spans = []
            litellm.write(orjson.dumps(litellm_payload(record),
                                       option=orjson.OPT_APPEND_NEWLINE))
            request, response = batch_lines(record)
            requests.write(orjson.dumps(request, option=orjson.OPT_APPEND_NEWLINE))
            responses.write(orjson.dumps(response, option=orjson.OPT_APPEND_NEWLINE))
        if spans:
            otlp.write(orjson.dumps(traces_request(spans, {"service.name": "gw"}),
                                    option=orjson.OPT_APPEND_NEWLINE))
    return paths


def run_read(path: Path) -> dict[str, Any]:
    """Read ``path`` in a fresh process; the time excludes the interpreter's imports."""
    return measure(f"""
        import time
        from pathlib import Path
        from distillguard.logs import read_file
        started = time.perf_counter()
        rows = quarantined = 0
        for chunk in read_file(Path({str(path)!r})):
            rows += chunk.batch.num_rows
            quarantined += len(chunk.quarantined)
        result = {{"rows": rows, "quarantined": quarantined,
                   "seconds": time.perf_counter() - started}}
    """)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--corpora", type=Path, default=None)
    args = parser.parse_args()
    paths = generate(args.size, find_corpora_dir(args.corpora))
    runs = {name: [run_read(path) for _ in range(args.repeat)] for name, path in paths.items()}
    seconds = {name: statistics.median(r["result"]["seconds"] for r in rs)
               for name, rs in runs.items()}
    print(f"{args.size:,} exchanges, median of {args.repeat} reads each, fresh process")
    print(f"{'source':<14}{'file':>10}{'exchanges/s':>14}{'peak RSS':>11}{'x native':>10}")
    for name, rs in runs.items():
        result = rs[0]["result"]
        if result["rows"] != args.size or result["quarantined"]:
            raise SystemExit(f"{name}: read {result['rows']:,} exchanges and quarantined "
                             f"{result['quarantined']:,}; expected {args.size:,} and none")
        size = sum(p.stat().st_size for p in paths[name].parent.iterdir())
        peak = max(r["peak_rss_bytes"] for r in rs)
        print(f"{name:<14}{mib(size):>10}{args.size / seconds[name]:>14,.0f}{mib(peak):>11}"
              f"{seconds[name] / seconds['native']:>10.2f}")


if __name__ == "__main__":
    main()
