"""Push bundles to and pull them from a TAXII 2.1 collection (``taxii2-client``).

Pulling reads *every* page: a server answers with at most its page size and
``more: true`` plus a ``next`` token, and peers that read only the first page
silently miss the rest. Pushing splits the objects into envelopes that fit
the server's ``max_content_length``. Every error of the client library,
``requests`` or the server ends as a ``TaxiiError`` saying what failed, with
the server's own TAXII error title when it sent one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import requests
import taxii2client.exceptions as taxii_errors
from taxii2client.common import _HTTPConnection
from taxii2client.v21 import ApiRoot, Collection

from distillguard.errors import TaxiiError

__all__ = ["DEFAULT_PAGE_SIZE", "PushReport", "TaxiiTarget", "map_taxii_errors",
           "pull_objects", "push_objects"]

DEFAULT_PAGE_SIZE = 100
DEFAULT_TIMEOUT_SECONDS = 30.0
MAX_ENVELOPE_OBJECTS = 1_000
MAX_PAGES = 100_000
ENVELOPE_OVERHEAD_BYTES = 1_024


@dataclass(frozen=True)
class TaxiiTarget:
    """A collection on a TAXII 2.1 server: the API root URL and the collection id.

    Authentication: ``user`` and ``password`` (HTTP Basic), or ``token`` (sent as
    ``Authorization: Bearer <token>``).
    """

    api_root: str
    collection: str
    user: str | None = None
    password: str | None = None
    token: str | None = None
    timeout: float = DEFAULT_TIMEOUT_SECONDS
    verify_tls: bool = True

    @property
    def collection_url(self) -> str:
        return f"{self.api_root.rstrip('/')}/collections/{self.collection}/"


@dataclass
class PushReport:
    sent: int = 0
    succeeded: int = 0
    failed: int = 0
    pending: int = 0
    envelopes: int = 0


class _BearerAuth(requests.auth.AuthBase):
    def __init__(self, token: str) -> None:
        self.token = token

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = f"Bearer {self.token}"
        return r


class _TimeoutSession(requests.Session):
    """The client library sets no timeout; a server that never answers must not hang us."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.timeout = timeout

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs.setdefault("timeout", self.timeout)
        return super().request(*args, **kwargs)


def _server_words(response: requests.Response | None) -> str:
    if response is None:
        return ""
    try:
        body = response.json()
    except ValueError:
        return f": HTTP {response.status_code}"
    if isinstance(body, dict) and (body.get("title") or body.get("description")):
        return (f": HTTP {response.status_code} {body.get('title', '')} "
                f"{body.get('description', '')}".rstrip())
    return f": HTTP {response.status_code}"


@contextlib.contextmanager
def map_taxii_errors(what: str) -> Iterator[None]:
    """Turn the client library's and ``requests``' errors into ``TaxiiError``."""
    try:
        yield
    except requests.exceptions.HTTPError as exc:
        msg = f"{what} failed{_server_words(exc.response)}"
        raise TaxiiError(msg) from exc
    except requests.exceptions.Timeout as exc:
        msg = f"{what} failed: the server did not answer in time"
        raise TaxiiError(msg) from exc
    except requests.exceptions.RequestException as exc:
        msg = f"{what} failed: {exc}"
        raise TaxiiError(msg) from exc
    except taxii_errors.TAXIIServiceException as exc:
        msg = f"{what} failed: {exc}"
        raise TaxiiError(msg) from exc
    except (ValueError, KeyError, TypeError) as exc:  # a body that is not TAXII JSON
        msg = f"{what} failed: the server's answer is not TAXII 2.1 ({exc})"
        raise TaxiiError(msg) from exc


def _connection(target: TaxiiTarget) -> _HTTPConnection:
    auth = _BearerAuth(target.token) if target.token else None
    conn = _HTTPConnection(target.user, target.password, verify=target.verify_tls,
                           version="2.1", auth=auth)
    session = _TimeoutSession(target.timeout)
    session.verify, session.auth, session.headers = (conn.session.verify, conn.session.auth,
                                                     conn.session.headers)
    conn.session = session
    return conn


def _collection(target: TaxiiTarget, conn: _HTTPConnection) -> Collection:
    collection = Collection(target.collection_url, conn=conn)
    collection.refresh()
    return collection


def _envelopes(objects: list[dict[str, Any]], max_bytes: int) -> Iterator[list[dict[str, Any]]]:
    """Objects in groups whose envelope fits ``max_bytes`` (an object too big alone fails)."""
    group: list[dict[str, Any]] = []
    size = ENVELOPE_OVERHEAD_BYTES
    for obj in objects:
        n = len(orjson.dumps(obj)) + 1
        if n + ENVELOPE_OVERHEAD_BYTES > max_bytes:
            msg = f"object {obj.get('id')} is {n:,} bytes, over the server's limit of {max_bytes:,}"
            raise TaxiiError(msg)
        if group and (size + n > max_bytes or len(group) >= MAX_ENVELOPE_OBJECTS):
            yield group
            group, size = [], ENVELOPE_OVERHEAD_BYTES
        group.append(obj)
        size += n
    if group:
        yield group


@contextlib.contextmanager
def _open_collection(target: TaxiiTarget, what: str,
                     access: str) -> Iterator[tuple[Collection, _HTTPConnection]]:
    """The collection (``access``: read or write checked), errors mapped, closed after."""
    with map_taxii_errors(f"{what} {target.collection_url}"):
        conn = _connection(target)
        try:
            collection = _collection(target, conn)
            if not (collection.can_read if access == "read" else collection.can_write):
                msg = f"collection {target.collection} is not open to {access} for this user"
                raise TaxiiError(msg)
            yield collection, conn
        finally:
            conn.close()


def push_objects(target: TaxiiTarget, objects: list[dict[str, Any]], *,
                 on_envelope: Callable[[int], None] | None = None) -> PushReport:
    """Add ``objects`` to the collection, in as many envelopes as the server's size limit
    needs; wait for each to complete."""
    report = PushReport()
    with _open_collection(target, "push to", "write") as (collection, conn):
        root = ApiRoot(target.api_root, conn=conn)
        max_bytes = int(root.max_content_length or 10 * 1024 * 1024)
        for group in _envelopes(objects, max_bytes):
            status = collection.add_objects(orjson.dumps({"objects": group}).decode(),
                                            wait_for_completion=True, poll_interval=0.5,
                                            timeout=target.timeout)
            report.sent += len(group)
            report.envelopes += 1
            report.succeeded += int(status.success_count or 0)
            report.failed += int(status.failure_count or 0)
            report.pending += int(status.pending_count or 0)
            if on_envelope:
                on_envelope(len(group))
    return report


def pull_objects(target: TaxiiTarget, *, per_page: int = DEFAULT_PAGE_SIZE,
                 added_after: str | None = None,
                 on_page: Callable[[int], None] | None = None) -> list[dict[str, Any]]:
    """Every object of the collection, page after page until the server says no more."""
    out: list[dict[str, Any]] = []
    filters = {"added_after": added_after} if added_after else {}
    with _open_collection(target, "pull from", "read") as (collection, _):
        envelope = collection.get_objects(limit=per_page, **filters)
        for _ in range(MAX_PAGES):
            page = envelope.get("objects") or []
            if not isinstance(page, list):
                msg = "the server's envelope has no list of objects"
                raise TaxiiError(msg)
            out += page
            if on_page:
                on_page(len(page))
            if not envelope.get("more"):
                return out
            token = envelope.get("next")
            if not token:
                msg = ("the server says more objects follow but gives no 'next' token to "
                       "ask for them")
                raise TaxiiError(msg)
            envelope = collection.get_objects(limit=per_page, next=token, **filters)
    msg = f"stopped after {MAX_PAGES:,} pages: the server keeps saying more objects follow"
    raise TaxiiError(msg)
