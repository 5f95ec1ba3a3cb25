"""Whether a log file can be read at all, and in words why not."""

from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = ["cannot_read_reason", "unreadable_reason"]

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def cannot_read_reason(exc: OSError) -> str:
    """The quarantine reason for a file whose opening or reading raised ``exc``."""
    return f"file cannot be read: {exc.strerror or exc}"


def unreadable_reason(path: Path) -> str | None:
    """Why ``path`` cannot be read as a log file, or None when it can.

    Checks without reading: the entry must lead to a regular file (not a broken
    symbolic link, a named pipe that would block, a device) that this process may
    open.
    """
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        if path.is_symlink():
            try:
                target = os.readlink(path)
            except OSError:
                target = "?"
            return (f"file cannot be read: {path} is a broken symbolic link to {target} "
                    f"({exc.strerror})")
        return cannot_read_reason(exc)
    if not stat.S_ISREG(mode):
        kind = next((words for test, words in _KINDS if test(mode)), "not a regular file")
        return f"file cannot be read: it is {kind}, not a regular file"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        return cannot_read_reason(exc)
    os.close(fd)
    return None
