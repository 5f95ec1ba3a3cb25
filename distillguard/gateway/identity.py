"""Who sent a request: account from the API key, client IP behind trusted proxies.

A request carries exactly one credential: ``Authorization: Bearer KEY`` or
``x-api-key: KEY`` (both at once only if they hold the same key). Two different
ones are refused, never resolved by precedence: the gateway would otherwise
decide on one key while the upstream bills another. The credential decided on
is the one forwarded (``Caller.credential``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field

from xxhash import xxh3_64_hexdigest

from distillguard.errors import ApiError
from distillguard.gateway.config import AccountInfo

__all__ = ["Caller", "Identifier", "api_key_id", "request_headers"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# Derived accounts are remembered to skip re-hashing; bounded so random keys
# cannot grow memory without end.
_DERIVED_CACHE = 100_000
_CREDENTIAL_HEADERS = (b"authorization", b"x-api-key")


def _conflicting_keys() -> ApiError:
    return ApiError(401, "The request carries two different API keys; send one key, in "
                    "'Authorization: Bearer KEY' or in 'x-api-key: KEY'.",
                    code="conflicting_api_keys")


@dataclass(frozen=True, slots=True)
class Caller:
    account: AccountInfo
    api_key_id: str
    ip: str | None
    user_agent: str | None
    # The header (name, value) that identified the caller, forwarded as it came.
    credential: tuple[str, str] = field(repr=False)


def api_key_id(key: str) -> str:
    """A stable id for a key that is safe to log (never the key itself)."""
    return "key-" + xxh3_64_hexdigest(key.encode())[:12]


def request_headers(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """The request's headers by (lower-case, as the server gives them) name; the last of
    a repeated header wins, except a repeated credential header with two different
    values: ``ApiError`` 401."""
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in raw}
    if len(headers) != len(raw):
        for name in _CREDENTIAL_HEADERS:
            if len({v.strip() for k, v in raw if k == name}) > 1:
                raise _conflicting_keys()
    return headers


class Identifier:
    """Map request headers to a ``Caller``.

    ``keys`` is the key table; keys not in it become their own account
    (``derive``) or are refused (``reject``). The client IP is the peer, or,
    when the peer is a trusted proxy, the right-most ``X-Forwarded-For``
    address that is not a trusted proxy itself; a hop that is not an IP address
    ends the search at the peer.
    """

    def __init__(self, keys: dict[str, AccountInfo], *, unknown_keys: str,
                 trusted_proxies: Sequence[Network]) -> None:
        self.keys = keys
        self.by_account = {info.account_id: info for info in keys.values()}
        self.unknown_keys = unknown_keys
        self.trusted_proxies = tuple(trusted_proxies)
        self._derived: dict[str, AccountInfo] = {}  # a derived account's id is its key's id
        self._listed = {key: (info, api_key_id(key)) for key, info in keys.items()}

    def _trusted(self, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        return any(ip in net for net in self.trusted_proxies)

    def client_ip(self, peer: str | None, forwarded_for: str | None) -> str | None:
        if peer is None or not forwarded_for or not self.trusted_proxies:
            return peer
        try:
            if not self._trusted(ipaddress.ip_address(peer)):
                return peer
            for hop in reversed(forwarded_for.split(",")):
                if hop.strip():
                    ip = ipaddress.ip_address(hop.strip())
                    if not self._trusted(ip):
                        return str(ip)
        except ValueError:
            return peer
        return peer

    def account(self, key: str) -> tuple[AccountInfo, str]:
        """The key's account and the key's loggable id (both remembered, not re-hashed)."""
        known = self._listed.get(key)
        if known is not None:
            return known
        if self.unknown_keys == "reject":
            raise ApiError(401, "Invalid API key.", code="invalid_api_key")
        info = self._derived.get(key)
        if info is None:
            if len(self._derived) >= _DERIVED_CACHE:
                self._derived.clear()
            info = self._derived[key] = AccountInfo(api_key_id(key), listed=False)
        return info, info.account_id

    def identify(self, headers: dict[str, str], peer: str | None) -> Caller:
        """``headers`` from ``request_headers``; ``ApiError`` 401 when no key is given, two
        different ones are, or the key is refused."""
        key = headers.get("x-api-key", "").strip()
        credential = ("x-api-key", key)
        auth = headers.get("authorization")
        if auth is not None:
            if auth[:7].lower() != "bearer ":
                raise ApiError(401, "Unsupported Authorization scheme: send 'Authorization: "
                               "Bearer KEY' or 'x-api-key: KEY'.", code="invalid_authorization")
            bearer = auth[7:].strip()
            if key and bearer and bearer != key:
                raise _conflicting_keys()
            if bearer and not key:
                key, credential = bearer, ("authorization", f"Bearer {bearer}")
        if not key:
            raise ApiError(401, "Missing API key: send 'Authorization: Bearer KEY' or "
                           "'x-api-key: KEY'.", code="missing_api_key")
        return Caller(*self.account(key),
                      self.client_ip(peer, headers.get("x-forwarded-for")),
                      headers.get("user-agent"), credential)
