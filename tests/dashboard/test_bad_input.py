"""Bad input to the dashboard: unknown ids, bad query parameters, refused posts and tokens.

Every refusal is a clear message with the right status; under ``/api/`` it is JSON,
``{"error": {"status", "message"}}``; nothing answers 500.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from tests.dashboard.conftest import (
    Served,
    StoreCase,
    serve,
    tiny_findings,
    tiny_records,
    write_case,
)

ACCOUNT_API = "/api/accounts/acct-a1/exchanges"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One tiny dashboard for the module: no test here may change what it holds."""
    yield from serve(write_case(tmp_path_factory.mktemp("tiny"), tiny_records(),
                                tiny_findings()))


def _api_error(served: Served, path: str, method: str = "GET", **kw: object
               ) -> tuple[int, str]:
    r = httpx.request(method, served.url + path, timeout=60, **kw)  # type: ignore[arg-type]
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert set(body) == {"error"} and body["error"]["status"] == r.status_code
    return r.status_code, body["error"]["message"]


@pytest.mark.parametrize(("page", "shown"), [
    ("abc", "'abc'"), ("0", "'0'"), ("-5", "'-5'"), ("1.5", "'1.5'"), ("", "''"),
    ("99999999999999999999999", "'99999999999999999999999'")])
def test_bad_page_numbers_are_refused_with_a_reason(served: Served, page: str,
                                                    shown: str) -> None:
    status, message = _api_error(served, f"{ACCOUNT_API}?page={page}")
    assert status == 400
    assert message == f"page must be a whole number from 1 to 1,000,000,000, not {shown}"
    html = httpx.get(f"{served.url}/accounts/acct-a1?page={page}")
    assert html.status_code == 400 and "page must be a whole number" in html.text
    assert html.headers["content-type"].startswith("text/html")


@pytest.mark.parametrize(("q", "found"), [
    ("\x00", 0), ("\udcff".encode("utf-8", "surrogatepass").decode("latin-1"), 0),
    ("%", 0),  # a LIKE pattern would match all 64
    ("_", 4),  # literal: the four hostile prompts' "__pwned"
    ("' OR 1=1; DROP TABLE decisions; --", 0), ("x" * 5000, 0), ("$q", 0),
    ("?", 31), ("  ", 64)])
def test_odd_searches_are_text_not_errors(served: Served, q: str, found: int) -> None:
    r = httpx.get(served.url + ACCOUNT_API, params={"q": q})
    assert r.status_code == 200
    assert (r.json()["total"], r.json()["q"]) == (found, q[:200].strip())
    assert served.opened.queries.decisions() == []


@pytest.mark.parametrize(("path", "message"), [
    ("/api/campaigns/C404/graph", "No such campaign in these findings."),
    ("/api/campaigns/%00/graph", "No such campaign in these findings."),
    ("/api/accounts/nobody/exchanges", "No such account in the store."),
    ("/api/accounts/%3Cscript%3E/exchanges", "No such account in the store."),
    ("/api/nothing-here", "Nothing at /api/nothing-here."),
])
def test_unknown_ids_and_calls_answer_404_in_json(served: Served, path: str,
                                                  message: str) -> None:
    assert _api_error(served, path) == (404, message)


def test_unknown_pages_answer_a_page(served: Served) -> None:
    for path in ("/campaigns/C404", "/accounts/nobody", "/nowhere", "/static/none.js",
                 "/static/../server.py"):
        r = httpx.get(served.url + path)
        assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
        assert re.search(r"<h1[^>]*>[^<]*Not found", r.text), path


def test_wrong_methods(served: Served) -> None:
    assert _api_error(served, "/api/overview", "POST") == (
        405, "POST is not answered at /api/overview.")
    assert httpx.put(served.url + "/decisions").status_code == 405


def _form(served: Served) -> dict[str, str]:
    html = httpx.get(served.url + "/campaigns/C1").text
    token = re.search(r'name="form_token" value="([0-9a-f]+)"', html)
    assert token is not None
    return {"form_token": token[1], "kind": "campaign", "subject": "C1",
            "decision": "confirmed", "note": "n", "analyst": "a"}


@pytest.mark.parametrize(("change", "status", "said"), [
    ({"form_token": ""}, 403, "missing or stale form token"),
    ({"form_token": None}, 403, "missing or stale form token"),
    ({"form_token": "0" * 64}, 403, "missing or stale form token"),
    ({"decision": "maybe"}, 400, "decision must be one of"),
    ({"kind": "owner"}, 400, "kind must be one of"),
    ({"kind": None}, 400, "kind must be one of"),
    ({"subject": "C404"}, 400, "no campaign &#39;C404&#39; in these findings"),
    ({"kind": "account", "subject": "nobody"}, 400, "no account &#39;nobody&#39; listed"),
    ({"note": "x" * 2001}, 400, "a note holds at most 2,000 characters"),
])
def test_refused_decisions_say_why_and_record_nothing(served: Served,
                                                      change: dict[str, str | None],
                                                      status: int, said: str) -> None:
    form = {k: v for k, v in {**_form(served), **change}.items() if v is not None}
    r = httpx.post(served.url + "/decisions", data=form)
    assert r.status_code == status and said in r.text
    assert served.opened.queries.decisions() == []


def test_refused_posts_by_origin_size_and_encoding(served: Served) -> None:
    form = _form(served)
    url = served.url + "/decisions"
    for origin in ("http://evil.example", "null", "http://127.0.0.1:1"):
        r = httpx.post(url, data=form, headers={"origin": origin})
        assert r.status_code == 403 and "cross-site request refused" in r.text
    big = httpx.post(url, data={**form, "note": "x" * 20_000})
    assert big.status_code == 413 and "The form is too large." in big.text
    as_json = httpx.post(url, json=form)
    assert as_json.status_code == 400 and "Decisions are sent as a form." in as_json.text
    garbled = httpx.post(url, content=b"\xff\xfe=\x00&kind=campaign",
                         headers={"content-type": "application/x-www-form-urlencoded"})
    assert garbled.status_code == 403
    assert served.opened.queries.decisions() == []


def test_token_failures_in_json_and_as_pages(tiny: StoreCase) -> None:
    for served in serve(tiny, token="tok-123"):
        for headers in ({}, {"authorization": "Bearer nope"}, {"authorization": "tok-123"},
                        {"cookie": "distillguard_dashboard=tok-123"}):
            status, message = _api_error(served, "/api/overview", headers=headers)
            assert status == 401 and message.startswith("This dashboard needs its token")
        assert _api_error(served, "/api/overview?token=nope") == (401, "Wrong token.")
        page = httpx.get(served.url + "/campaigns/C1")
        assert page.status_code == 401 and "needs its token" in page.text
        post = httpx.post(served.url + "/decisions", data={"kind": "campaign"})
        assert post.status_code == 401
        ok = httpx.get(served.url + "/api/overview", headers={"authorization": "Bearer tok-123"})
        assert ok.status_code == 200 and ok.json()["campaigns"][0]["campaign_id"] == "C1"
