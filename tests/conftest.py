from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"


def make_record(i: int = 0, **overrides: Any) -> dict[str, Any]:
    """A valid exchange-log record; ``overrides`` replace or add fields (None removes)."""
    record: dict[str, Any] = {
        "request_id": f"r{i}",
        "ts": "2026-03-02T16:00:00Z",
        "account_id": f"acct-{i % 3}",
        "model": "model-b1",
        "messages": [{"role": "user", "content": f"question {i}"}],
        "ip": "203.0.113.7",
        "input_tokens": 12,
    }
    for key, value in overrides.items():
        if value is None:
            record.pop(key, None)
        else:
            record[key] = value
    return record


def write_jsonl(path: Path, records: list[Any], *, trailing: bytes = b"") -> Path:
    with open(path, "wb") as f:
        for r in records:
            f.write(r if isinstance(r, bytes) else orjson.dumps(r) + b"\n")
        f.write(trailing)
    return path


@pytest.fixture(scope="session")
def shared_corpora() -> Path:
    """The real prompt corpora (../shared/corpora) the simulator and replay upstream read."""
    path = SHARED / "corpora"
    if not path.is_dir():
        pytest.fail(f"the shared corpora are missing at {path}")
    return path
