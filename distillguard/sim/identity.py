"""Random-looking identifiers, drawn the same way for every account.

Legitimate and attack accounts get their ids from the same generators, so an
id's shape, length or order never tells who made it.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa

__all__ = ["ID_FORMATS", "hex_ids", "ja4_like"]

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)

# kind -> (prefix, hex digits)
ID_FORMATS = {
    "account": ("acct_", 24),
    "org": ("org_", 24),
    "api_key": ("key_", 20),
    "payment": ("pmfp_", 32),
    "request": ("req_", 24),
    "conversation": ("conv_", 24),
}


def hex_ids(rng: np.random.Generator, n: int, kind: str) -> pa.StringArray:
    """``n`` ids of ``kind`` (see ``ID_FORMATS``): a fixed prefix and random hex digits."""
    prefix, digits = ID_FORMATS[kind]
    head = np.frombuffer(prefix.encode(), dtype=np.uint8)
    chars = np.empty((n, len(head) + digits), dtype=np.uint8)
    chars[:, : len(head)] = head
    chars[:, len(head):] = _HEX[rng.integers(0, 16, size=(n, digits), dtype=np.uint8)]
    width = chars.shape[1]
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(chars.tobytes()))


def ja4_like(tls_stack: str | None, rng: np.random.Generator | None = None) -> str:
    """A JA4-shaped TLS client fingerprint: stable per named TLS stack, random for a custom one."""
    if tls_stack is not None:
        digest = hashlib.sha256(tls_stack.encode()).hexdigest()
    else:
        assert rng is not None
        digest = "".join(_HEX[rng.integers(0, 16, size=64)].tobytes().decode())
    ciphers, extensions = 8 + int(digest[0], 16), 10 + int(digest[1], 16)
    return f"t13d{ciphers:02d}{extensions:02d}h2_{digest[2:14]}_{digest[14:26]}"
