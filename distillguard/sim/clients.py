"""HTTP clients (User-Agent and TLS fingerprint) that accounts send requests with."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from distillguard.sim.identity import ja4_like
from distillguard.sim.templates import read_data

__all__ = ["ClientTable", "Clients"]


@dataclass(frozen=True)
class ClientTable:
    user_agent: pa.StringArray
    fingerprint: pa.StringArray
    browser: np.ndarray  # bool: a chat front end, which sends a conversation id


class Clients:
    """The common clients of ``data/clients.yaml``, plus custom ones made on demand."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        rows = read_data("clients.yaml")["clients"]
        self.ua = [r["ua"] for r in rows]
        self.fp = [ja4_like(r["tls"]) for r in rows]
        self.browser = [r["kind"] == "browser" for r in rows]
        w = np.array([r["weight"] for r in rows], dtype=float)
        self._all = w / w.sum()
        sdk = np.where(np.array(self.browser), 0.0, w)
        self._sdk = sdk / sdk.sum()
        self._n_common = len(rows)

    def consumer(self, n: int) -> np.ndarray:
        """Clients of ordinary people: browsers and SDKs by popularity."""
        return self.rng.choice(self._n_common, size=n, p=self._all)

    def consumer_set(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``k`` common clients (by popularity) and how often each is used among them: what
        an operator's automation passes for."""
        ids = self.rng.choice(self._n_common, size=min(k, self._n_common), replace=False,
                              p=self._all)
        return ids, self._all[ids] / self._all[ids].sum()

    def sdk(self, n: int) -> np.ndarray:
        return self.rng.choice(self._n_common, size=n, p=self._sdk)

    def custom(self) -> int:
        """A new client: a common SDK's User-Agent over a TLS stack nobody else has."""
        base = int(self.sdk(1)[0])
        self.ua.append(self.ua[base])
        self.fp.append(ja4_like(None, self.rng))
        self.browser.append(False)
        return len(self.ua) - 1

    def table(self) -> ClientTable:
        return ClientTable(pa.array(self.ua, pa.string()), pa.array(self.fp, pa.string()),
                           np.array(self.browser, dtype=bool))
