"""Find and read the real prompt corpora (shared/corpora): the simulator builds traffic from
them, the replay upstream answers from them. Not a pipeline stage: any stage may read them."""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from distillguard.errors import InputError

__all__ = ["CORPORA_ENV", "corpus_files", "file_stamp", "find_corpora_dir", "iter_corpus",
           "load_corpus"]

CORPORA_ENV = "DISTILLGUARD_CORPORA"


def find_corpora_dir(explicit: str | Path | None = None) -> Path:
    """Where the corpora are: ``explicit``, else ``$DISTILLGUARD_CORPORA``, else the
    nearest ``shared/corpora`` beside the working directory or one of its parents.

    Raises ``InputError`` naming every place looked at when none has them.
    """
    candidates: list[Path] = []
    if explicit:
        candidates.append(Path(explicit))
    elif os.environ.get(CORPORA_ENV):
        candidates.append(Path(os.environ[CORPORA_ENV]))
    else:
        here = Path.cwd().resolve()
        for base in (here, *here.parents):
            candidates += [base / "shared" / "corpora", base / "corpora"]
        package_root = Path(__file__).resolve().parents[1]
        candidates.append(package_root.parent / "shared" / "corpora")
    for path in candidates:
        if path.is_dir() and any(path.glob("*.jsonl.gz")):
            return path
    looked = ", ".join(str(p) for p in candidates[:6])
    msg = (f"cannot find the prompt corpora (looked in {looked}); pass --corpora DIR "
           f"or set {CORPORA_ENV}")
    raise InputError(msg)


def corpus_files(corpora_dir: Path) -> dict[str, Path]:
    """Corpus name (file stem, e.g. ``sharegpt``) to its file."""
    return {p.name.removesuffix(".jsonl.gz"): p for p in sorted(corpora_dir.glob("*.jsonl.gz"))}


def file_stamp(path: Path) -> tuple[int, int]:
    """A file's modification time (ns) and size: a cache key that changes when it does."""
    stat = path.stat()
    return stat.st_mtime_ns, stat.st_size


def iter_corpus(path: Path) -> Iterator[dict[str, Any]]:
    """Yield the items of one corpus file, in file order."""
    with gzip.open(path, "rb") as f:
        for line in f:
            if line.strip():
                yield orjson.loads(line)


def load_corpus(corpora_dir: Path, name: str) -> list[dict[str, Any]]:
    """All items of one corpus by name; ``InputError`` if there is no such corpus."""
    files = corpus_files(corpora_dir)
    if name not in files:
        msg = f"no corpus named {name!r} in {corpora_dir} (have: {', '.join(files)})"
        raise InputError(msg)
    return list(iter_corpus(files[name]))
