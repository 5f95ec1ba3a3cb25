"""The scoring worker: ``python -m distillguard.gateway.scoring_worker``.

Its arguments are the nice value to run at and the text units to remember per
account. Reads frames of request rows on stdin (``scoring.write_frame``), answers
each with a frame of the window's counters (``scoring.WindowCounter``) on stdout,
and exits when stdin closes (the gateway stopped or died).
"""

from __future__ import annotations

import os
import sys

import orjson

from distillguard.gateway.scoring import WindowCounter, write_frame

__all__ = ["main"]


def main() -> None:
    if len(sys.argv) > 1 and int(sys.argv[1]) > 0:
        os.nice(int(sys.argv[1]))  # scoring yields the CPU to the proxy (gateway.yaml)
    counter = WindowCounter(int(sys.argv[2]) if len(sys.argv) > 2 else 2048)
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while True:
        head = stdin.read(4)
        if len(head) < 4:
            return
        frame = orjson.loads(stdin.read(int.from_bytes(head, "big")))
        counts = (counter if frame["remember"] else WindowCounter(1)).count(frame["rows"])
        write_frame(stdout, counts)
        stdout.flush()


if __name__ == "__main__":
    main()
