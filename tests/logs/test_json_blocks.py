"""The block-at-a-time JSON Lines reader stores exactly what the per-record path stores."""

from __future__ import annotations

import gzip
import random
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pytest

from distillguard.engines import ExchangeStore
from distillguard.logs import JsonlOptions, json_blocks
from distillguard.logs.bounds import latest_allowed_ms
from distillguard.logs.json_blocks import SMALLEST_PART
from distillguard.logs.records import parse_timestamp_ms
from tests.conftest import make_record

_QUARANTINE = "SELECT source_file, source_line, code, reason, raw, raw_encoding, raw_bytes " \
              "FROM quarantine ORDER BY source_file, source_line, code"


def _good(i: int, rng: random.Random) -> dict[str, Any]:
    """A valid record of a varied shape."""
    record = make_record(i, account_id=f"acct-{rng.randrange(40)}")
    shape = i % 11
    if shape == 1:
        record["ts"] = 1772467200000 + i  # epoch milliseconds among strings
    elif shape == 2:
        record.update(ts="2026-03-02T17:00:00.5+01:00", account_created="2025-01-01 08:00:00Z")
    elif shape == 3:
        record.update(messages=[{"role": "user", "content": "héllo \u2028 \"quoted\"\n"},
                                {"role": "assistant", "content": "ok", "name": "bot"},
                                {"role": "tool", "content": ""}], tools=["search", "calc"])
    elif shape == 4:
        record.update(region="eu", latency_ms=41.5, meta={"ts": 7, "tags": [1, None]})
    elif shape == 5:
        record.update(system=None, verified=False, has_image=True, asn=0, status=503,
                      output_tokens=0, account_created=1700000000000)
    elif shape == 6:
        record.update(ts="2026-03-02T16:00:00.1234Z")  # more digits than Arrow's cast takes
    elif shape == 7:
        record.update(ts="2026-03-02T16:00:00")  # no offset: UTC
    elif shape == 8:
        record.update(conversation_id=None, response="x" * rng.randrange(3000))
    return record


_BAD: list[bytes | dict[str, Any]] = [
    b"{not json",
    b"\xff\xfe binary\n",
    b'{"request_id": "two"}{"request_id": "objects"}',
    b"[1, 2, 3]",
    b'"just a string"',
    b"\xef\xbb\xbf" + orjson.dumps(make_record(9001)),  # BOM
    b'{"request_id": "nan", "ts": "2026-03-02T16:00:00Z", "account_id": "a", "model": "m",'
    b' "messages": [{"role": "user", "content": "q"}], "x": NaN}',
    b'{"request_id": "dup-key", "request_id": "again", "ts": 1772467200000, "account_id": "a",'
    b' "model": "m", "messages": [{"role": "user", "content": "q"}]}',
    make_record(9002, input_tokens="12"),
    make_record(9003, input_tokens=12.0),
    make_record(9004, status=True),
    make_record(9005, verified=1),
    make_record(9006, account_id=None),
    make_record(9007, messages=[]),
    make_record(9008, messages=[{"role": "robot", "content": "x"}]),
    make_record(9009, messages=[{"role": "user", "content": None}]),
    make_record(9010, messages=[None]),
    make_record(9011, messages=["text"]),
    make_record(9012, tools=["a", None]),
    make_record(9013, asn=-(2**63)),
    make_record(9014, ts="2150-01-01T00:00:00Z"),
    make_record(9015, ts=1772467200),  # seconds
    make_record(9016, input_tokens=-5),
    make_record(9017, ts="2026-02-30T16:00:00Z"),
    make_record(9018, ts="2026-03-02T24:00:00Z"),
    make_record(9019, ts="yesterday"),
    make_record(9020, ts=1.7e12),
    make_record(9021, account_created="2150-01-01T00:00:00Z"),
    make_record(9022, asn=5_000_000_000),
    b'{"request_id": "big", "ts": 1772467200000, "account_id": "a", "model": "m",'
    b' "messages": [{"role": "user", "content": "q"}], "status": 18446744073709551616}',
    b'{"request_id": "ctl", "ts": 1772467200000, "account_id": "a", "model": "m",'
    b' "messages": [{"role": "user", "content": "tab\there"}]}',
    b'{"request_id": "surrogate", "ts": 1772467200000, "account_id": "a", "model": "m",'
    b' "messages": [{"role": "user", "content": "\\ud800"}]}',
]


def _mixed_log(path: Path, n: int = 3000, seed: int = 5) -> Path:
    """Good records of many shapes with bad lines, blank lines, repeats and CRLF among them."""
    rng = random.Random(seed)
    lines: list[bytes] = []
    for i in range(n):
        roll = rng.random()
        if roll < 0.08:
            bad = _BAD[rng.randrange(len(_BAD))]
            lines.append(bad if isinstance(bad, bytes) else orjson.dumps(bad))
        elif roll < 0.10:
            lines.append(rng.choice([b"", b"   ", b"\t\r", b"\x0b"]))
        elif roll < 0.12:
            lines.append(orjson.dumps(make_record(rng.randrange(i + 1))))  # a repeated id
        else:
            line = orjson.dumps(_good(i, rng))
            if i % 17 == 0:
                line = b"  " + line + b" \r"
            lines.append(line)
    with gzip.open(path, "wb") as f:
        f.write(b"\n".join(lines) + b'\n{"request_id": "cut short')
    return path


def _stored(db: Path, log: Path, options: JsonlOptions) -> tuple[pa.Table, list[tuple]]:
    with ExchangeStore(db, jsonl=options) as store:
        report = store.ingest([log])
        table = store.con.sql("SELECT * FROM exchanges ORDER BY source_line").to_arrow_table()
        quarantine = store.con.execute(_QUARANTINE).fetchall()
    assert report.inserted == table.num_rows
    return table, quarantine


@pytest.mark.parametrize(("batch_rows", "block_bytes", "smallest_part"),
                         [(7, 5_003, 3), (333, 61_441, 1), (16_384, 8 << 20, SMALLEST_PART)])
def test_fast_path_stores_what_the_per_record_path_stores(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch_rows: int, block_bytes: int,
        smallest_part: int) -> None:
    log = _mixed_log(tmp_path / "mixed.jsonl.gz")
    reference, reference_quarantine = _stored(
        tmp_path / "per-record.duckdb", log, JsonlOptions(vectorized=False, batch_rows=1_000))
    line_by_line = 0
    per_record = json_blocks.records_of_lines

    def counted(lines: list[tuple[int, bytes]], *args: Any) -> json_blocks.LinesResult:
        nonlocal line_by_line
        line_by_line += len(lines)
        return per_record(lines, *args)

    monkeypatch.setattr(json_blocks, "records_of_lines", counted)
    fast, fast_quarantine = _stored(
        tmp_path / "fast.duckdb", log,
        JsonlOptions(batch_rows=batch_rows, block_bytes=block_bytes, smallest_part=smallest_part))
    assert line_by_line < 3000 * 0.2  # the other lines took the fast path
    assert reference.num_rows > 2000
    assert len(reference_quarantine) > 200
    assert fast.equals(reference)
    assert fast_quarantine == reference_quarantine


@pytest.mark.parametrize("seed", range(3))
def test_column_wise_timestamps_agree_with_the_per_record_parser(tmp_path: Path,
                                                                 seed: int) -> None:
    """Random RFC 3339-looking strings, valid and not (hour 24, day 31 of February, odd
    zones, many digits): both paths accept the same ones and give the same milliseconds."""
    rng = random.Random(seed)
    stamps = []
    for _ in range(2000):
        date = f"{rng.randrange(1999, 2151)}-{rng.randrange(0, 14):02d}-{rng.randrange(0, 33):02d}"
        clock = f"{rng.randrange(0, 26):02d}:{rng.randrange(0, 62):02d}:{rng.randrange(0, 62):02d}"
        fraction = rng.choice(["", ".5", f".{rng.randrange(1000):03d}",
                               f".{rng.randrange(10000):04d}"])
        zone = rng.choice(["Z", "Z", "", "+01:00", "-0930", f"+{rng.randrange(30):02d}:"
                           f"{rng.randrange(70):02d}", "z"])
        stamps.append(date + rng.choice(["T", "T", " ", "t"]) + clock + fraction + zone)
    log = tmp_path / "stamps.jsonl"
    log.write_bytes(b"".join(orjson.dumps(make_record(i, ts=s)) + b"\n"
                             for i, s in enumerate(stamps)))
    fast, _ = _stored(tmp_path / "f.duckdb", log, JsonlOptions(smallest_part=1))
    reference, _ = _stored(tmp_path / "r.duckdb", log, JsonlOptions(vectorized=False))
    assert fast.equals(reference)
    latest = latest_allowed_ms()

    def accepted(stamp: str) -> bool:
        try:
            return parse_timestamp_ms(stamp) < latest
        except ValueError:
            return False

    assert fast.num_rows == sum(map(accepted, stamps)) > 100
