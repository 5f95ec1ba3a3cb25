"""Where requests come from: IP addresses, their AS numbers and countries.

Addresses are drawn inside a few random /16 prefixes per AS (chosen from the
seed), so that addresses of one network look alike across accounts, as real
ones do. Accounts hold a contiguous range of the table: their own addresses,
or a range shared with others (a campus NAT, a company egress, a proxy pool).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from distillguard.sim.templates import read_data

__all__ = ["IpTable", "Networks"]

PREFIXES_PER_AS = 4
_RESERVED_FIRST_OCTETS = {0, 10, 100, 127, 169, 172, 192, 198, 203}
_FIRST_OCTETS = np.array([o for o in range(1, 224) if o not in _RESERVED_FIRST_OCTETS])


@dataclass(frozen=True)
class IpTable:
    ip: pa.StringArray
    asn: np.ndarray
    country: pa.StringArray


class Networks:
    """Allocates addresses; ``table()`` freezes them."""

    def __init__(self, rng: np.random.Generator) -> None:
        data = read_data("networks.yaml")
        self.rng = rng
        self.countries: list[str] = list(data["countries"])
        self.tz_choices = [list(map(float, data["countries"][c][0])) for c in self.countries]
        w = np.array([data["countries"][c][1] for c in self.countries], dtype=float)
        self.consumer_weights = w / w.sum()
        exits = data["proxy_exits"]
        e = np.array([exits.get(c, 0.0) for c in self.countries], dtype=float)
        self.exit_weights = e / e.sum()
        self.residential = {self.countries.index(c): list(a) for c, a in data["residential"].items()}
        self.hosted = {kind: [(int(a), self.countries.index(c)) for a, c in data[kind]]
                       for kind in ("cloud", "campus", "business")}
        self._prefixes: dict[int, np.ndarray] = {}
        self._ip: list[np.ndarray] = []
        self._asn: list[np.ndarray] = []
        self._country: list[np.ndarray] = []
        self.size = 0

    def country_code(self, idx: int) -> str:
        return self.countries[idx]

    def draw_countries(self, n: int, *, proxy: bool = False,
                       weights: np.ndarray | None = None) -> np.ndarray:
        """Countries of ``n`` people (``proxy``: of residential-proxy exits; ``weights``: of
        one vendor's exits)."""
        if weights is None:
            weights = self.exit_weights if proxy else self.consumer_weights
        return self.rng.choice(len(self.countries), size=n, p=weights)

    def vendor_weights(self, concentration: float) -> np.ndarray:
        """Country mix of one residential-IP vendor's exits: the usual proxy-exit countries,
        concentrated on a few of them (the lower ``concentration``, the fewer)."""
        w = self.rng.dirichlet(self.exit_weights * concentration + 1e-3)
        return w / w.sum()

    def draw_tz(self, countries: np.ndarray) -> np.ndarray:
        """A UTC offset (hours) for each country index."""
        out = np.empty(len(countries), dtype=float)
        for c in np.unique(countries):
            sel = countries == c
            out[sel] = self.rng.choice(self.tz_choices[int(c)], size=int(sel.sum()))
        return out

    def _home_asns(self, countries: np.ndarray) -> np.ndarray:
        out = np.empty(len(countries), dtype=np.int64)
        for c in np.unique(countries):
            sel = countries == c
            out[sel] = self.rng.choice(self.residential[int(c)], size=int(sel.sum()))
        return out

    def _prefix(self, asn: int) -> np.ndarray:
        if asn not in self._prefixes:
            first = self.rng.choice(_FIRST_OCTETS, size=PREFIXES_PER_AS)
            second = self.rng.integers(0, 256, size=PREFIXES_PER_AS)
            self._prefixes[asn] = (first << 24) | (second << 16)
        return self._prefixes[asn]

    def _add(self, asns: np.ndarray, countries: np.ndarray) -> int:
        """Append one fresh address per element; return the index of the first."""
        n = len(asns)
        prefixes = np.empty(n, dtype=np.int64)
        for a in np.unique(asns):
            sel = asns == a
            prefixes[sel] = self.rng.choice(self._prefix(int(a)), size=int(sel.sum()))
        host = (self.rng.integers(0, 256, size=n) << 8) | self.rng.integers(1, 255, size=n)
        start = self.size
        self._ip.append((prefixes | host).astype(np.uint32))
        self._asn.append(asns.astype(np.int64))
        self._country.append(countries.astype(np.int16))
        self.size += n
        return start

    def own_residential(self, countries: np.ndarray,
                        per_account: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each account gets ``per_account`` addresses of one home network in its country."""
        asn_per_account = self._home_asns(countries)
        lens = per_account.astype(np.int64)
        start = self._add(np.repeat(asn_per_account, lens), np.repeat(countries, lens))
        starts = start + np.concatenate([[0], np.cumsum(lens)[:-1]])
        return starts, lens

    def hosted_block(self, kind: str, n: int) -> tuple[int, int, int]:
        """``n`` addresses of one network of ``kind`` (cloud, campus, business).

        Returns (start, n, country index of the network).
        """
        options = self.hosted[kind]
        asn, c = options[int(self.rng.integers(len(options)))]
        return self._add(np.full(n, asn), np.full(n, c)), n, c

    def proxy_pool(self, n: int, weights: np.ndarray | None = None) -> tuple[int, int]:
        """A residential-proxy exit pool: ``n`` home addresses across countries; (start, n)."""
        countries = self.draw_countries(n, proxy=True, weights=weights)
        asns = self._home_asns(countries)
        return self._add(asns, countries), n

    def table(self) -> IpTable:
        ips = np.concatenate(self._ip) if self._ip else np.zeros(0, np.uint32)
        octets = [pc.cast(pa.array((ips >> s) & 255), pa.string()) for s in (24, 16, 8, 0)]
        codes = np.concatenate(self._country) if self._country else np.zeros(0, np.int16)
        return IpTable(ip=pc.binary_join_element_wise(*octets, "."),
                       asn=np.concatenate(self._asn) if self._asn else np.zeros(0, np.int64),
                       country=pa.array(self.countries).take(pa.array(codes)))
