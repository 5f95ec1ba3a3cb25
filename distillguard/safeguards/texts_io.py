"""Read the texts a provenance command checks: a JSON Lines file (one object per line
with a ``text`` field, optionally ``id`` and ``prompt``) or a directory of ``.txt`` files.

A line that is not a JSON object with a string ``text`` is set aside with its line number
and reason, counted and reported; it never stops the run.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from distillguard.errors import InputError

__all__ = ["RejectedLine", "TextsRead", "read_texts"]


@dataclass(frozen=True, slots=True)
class RejectedLine:
    file: str
    line: int
    reason: str


@dataclass
class TextsRead:
    ids: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    prompts: list[str | None] = field(default_factory=list)
    rejected: list[RejectedLine] = field(default_factory=list)


def _read_jsonl(path: Path, out: TextsRead) -> None:
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            for number, raw in enumerate(f, start=1):
                if not raw.strip():
                    continue
                try:
                    item = orjson.loads(raw)
                except orjson.JSONDecodeError as exc:
                    out.rejected.append(RejectedLine(str(path), number, f"not JSON: {exc}"))
                    continue
                if not isinstance(item, dict) or not isinstance(item.get("text"), str):
                    out.rejected.append(RejectedLine(str(path), number,
                                                     "not an object with a string 'text'"))
                    continue
                prompt = item.get("prompt")
                out.ids.append(str(item.get("id", f"{path.name}:{number}")))
                out.texts.append(item["text"])
                out.prompts.append(prompt if isinstance(prompt, str) else None)
    except (OSError, EOFError) as exc:
        msg = f"cannot read {path}: {exc}"
        raise InputError(msg) from exc


def read_texts(path: str | Path) -> TextsRead:
    """All texts of ``path``; ``InputError`` when it is neither a file nor a directory."""
    path = Path(path)
    out = TextsRead()
    if path.is_dir():
        for file in sorted(path.glob("*.txt")):
            try:
                out.texts.append(file.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError) as exc:
                out.rejected.append(RejectedLine(str(file), 0, f"unreadable: {exc}"))
                continue
            out.ids.append(file.name)
            out.prompts.append(None)
        return out
    if not path.is_file():
        msg = f"{path}: no such file or directory"
        raise InputError(msg)
    _read_jsonl(path, out)
    return out
