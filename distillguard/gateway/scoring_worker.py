"""The scoring worker: ``python -m distillguard.gateway.scoring_worker``.

Its one argument is the nice value to run at. Reads frames of request rows on
stdin (``scoring.write_frame``), answers each with a frame of their signals on
stdout, and exits when stdin closes (the gateway stopped or died).
"""

from __future__ import annotations

import os
import sys

import orjson

from distillguard.gateway.scoring import score_rows, write_frame

__all__ = ["main"]


def main() -> None:
    if len(sys.argv) > 1 and int(sys.argv[1]) > 0:
        os.nice(int(sys.argv[1]))  # scoring yields the CPU to the proxy (gateway.yaml)
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while True:
        head = stdin.read(4)
        if len(head) < 4:
            return
        rows = orjson.loads(stdin.read(int.from_bytes(head, "big")))
        write_frame(stdout, score_rows(rows))
        stdout.flush()


if __name__ == "__main__":
    main()
