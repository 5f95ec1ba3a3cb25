"""Who sent a request: account from the API key, client IP behind trusted proxies."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from xxhash import xxh3_64_hexdigest

from distillguard.gateway.api_errors import ApiError
from distillguard.gateway.config import AccountInfo

__all__ = ["Caller", "Identifier", "api_key_id"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# Derived accounts are remembered to skip re-hashing; bounded so random keys
# cannot grow memory without end.
_DERIVED_CACHE = 100_000


@dataclass(frozen=True, slots=True)
class Caller:
    account: AccountInfo
    api_key_id: str
    ip: str | None
    user_agent: str | None


def api_key_id(key: str) -> str:
    """A stable id for a key that is safe to log (never the key itself)."""
    return "key-" + xxh3_64_hexdigest(key.encode())[:12]


class Identifier:
    """Map request headers to a ``Caller``.

    ``keys`` is the key table; keys not in it become their own account
    (``derive``) or are refused (``reject``). The client IP is the peer, or,
    when the peer is a trusted proxy, the right-most ``X-Forwarded-For``
    address that is not a trusted proxy itself.
    """

    def __init__(self, keys: dict[str, AccountInfo], *, unknown_keys: str,
                 trusted_proxies: Sequence[Network]) -> None:
        self.keys = keys
        self.by_account = {info.account_id: info for info in keys.values()}
        self.unknown_keys = unknown_keys
        self.trusted_proxies = tuple(trusted_proxies)
        self._derived: dict[str, AccountInfo] = {}

    def _trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self.trusted_proxies)

    def client_ip(self, peer: str | None, forwarded_for: str | None) -> str | None:
        if peer is None or not forwarded_for or not self._trusted(peer):
            return peer
        for hop in reversed([h.strip() for h in forwarded_for.split(",") if h.strip()]):
            if not self._trusted(hop):
                return hop
        return peer

    def account(self, key: str) -> AccountInfo:
        info = self.keys.get(key)
        if info is not None:
            return info
        if self.unknown_keys == "reject":
            raise ApiError(401, "Invalid API key.", code="invalid_api_key")
        info = self._derived.get(key)
        if info is None:
            if len(self._derived) >= _DERIVED_CACHE:
                self._derived.clear()
            info = self._derived[key] = AccountInfo(api_key_id(key), listed=False)
        return info

    def identify(self, headers: dict[str, str], peer: str | None) -> Caller:
        """``headers`` lower-cased; ``ApiError`` 401 when no key is given or it is refused."""
        key = headers.get("x-api-key")
        if not key:
            auth = headers.get("authorization", "")
            key = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        if not key:
            raise ApiError(401, "Missing API key: send 'Authorization: Bearer KEY' or "
                           "'x-api-key: KEY'.", code="missing_api_key")
        return Caller(self.account(key), api_key_id(key),
                      self.client_ip(peer, headers.get("x-forwarded-for")),
                      headers.get("user-agent"))
