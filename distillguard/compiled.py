"""Loops compiled to machine code on first use, for the few kernels numpy has no
whole-array form for (``linkage.content_similarity``, ``signals.template_units``).

Numba is imported only when a kernel is first called: loading it and the first
kernel maps LLVM, about 140 MB resident and 0.3 s, which commands and processes
that never run a kernel (the gateway, ``--help``) should not pay. Compiled code is cached
next to the module (``cache=True``), so a process compiles a kernel once per
installation, not once per run.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

__all__ = ["compiled"]


@cache
def compiled(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` compiled without the interpreter lock (threads run it side by side)."""
    import numba

    return numba.njit(nogil=True, cache=True)(function)
