"""The dashboard served on loopback, read over HTTP: pages, API, decisions, security."""

from __future__ import annotations

import base64
import hashlib
import re
from html import unescape
from urllib.parse import quote

import httpx
import orjson
import pytest

from distillguard.dashboard import CONTENT_SECURITY_POLICY, render_report
from tests.dashboard.conftest import (
    CAMPAIGN,
    HOSTILE_ACCOUNT,
    HOSTILE_PROMPTS,
    Served,
    StoreCase,
    serve,
)


def _get(served: Served, path: str, **kw: object) -> httpx.Response:
    return httpx.get(served.url + path, timeout=60, **kw)  # type: ignore[arg-type]


def _form_token(html: str) -> str:
    return re.search(r'name="form_token" value="([0-9a-f]+)"', html).group(1)  # type: ignore[union-attr]


def test_overview_lists_the_campaign_with_counts_and_traffic(tiny_served: Served) -> None:
    r = _get(tiny_served, "/")
    assert r.status_code == 200
    assert r.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert r.headers["x-content-type-options"] == "nosniff"
    html = r.text
    assert 'data-campaign="C1"' in html and 'data-count="extraction">3<' in html
    assert 'data-count="review">2<' in html
    traffic = orjson.loads(re.search(r'id="traffic-data">(.*?)</script>', html, re.S).group(1))  # type: ignore[union-attr]
    assert sum(map(sum, traffic["series"].values())) == 424
    assert sum(traffic["series"]["C1"]) == 5 * 60 + len(HOSTILE_PROMPTS)
    assert traffic["releases"] == [{"model": "model-b2", "released_at": "2026-03-02T12:00:00Z"}]


def test_campaign_page_and_graph(tiny_served: Served) -> None:
    html = _get(tiny_served, "/campaigns/C1").text
    assert "Campaign C1" in html and 'data-expected-nodes="5"' in html
    assert "model-b2" in html and "everyone else" in html
    graph = _get(tiny_served, "/api/campaigns/C1/graph").json()
    assert sorted(n["id"] for n in graph["nodes"]) == sorted(CAMPAIGN)
    kinds = {e[2] for e in graph["edges"]}
    assert {"payment_fingerprint", "main_ip", "created_together"} <= kinds
    pay = [e for e in graph["edges"] if e[2] == "payment_fingerprint"]
    assert pay == [["acct-a1", "acct-a2", "payment_fingerprint", "pay-shared-1"]]
    assert all(0 <= n["x"] <= 1 and 0 <= n["y"] <= 1 for n in graph["nodes"])


def test_unknown_pages_answer_404_in_their_format(tiny_served: Served) -> None:
    page = _get(tiny_served, "/campaigns/C9")
    assert page.status_code == 404 and "No such campaign" in page.text
    api = _get(tiny_served, "/api/campaigns/C9/graph")
    assert api.status_code == 404
    assert api.json() == {"error": {"status": 404,
                                    "message": "No such campaign in these findings."}}
    assert _get(tiny_served, "/accounts/nobody").status_code == 404
    assert _get(tiny_served, "/api/accounts/nobody/exchanges").status_code == 404
    assert _get(tiny_served, "/accounts/acct-a1?page=abc").status_code == 400


def test_account_pages_through_its_exchanges_and_searches(tiny_served: Served) -> None:
    first = _get(tiny_served, "/api/accounts/acct-a2/exchanges").json()
    assert (first["total"], first["pages"], len(first["rows"])) == (60, 3, 25)
    second = _get(tiny_served, "/api/accounts/acct-a2/exchanges?page=2").json()
    last = _get(tiny_served, "/api/accounts/acct-a2/exchanges?page=99").json()
    ids = [r["request_id"] for p in (first, second, last) for r in p["rows"]]
    assert last["page"] == 3 and len(ids) == len(set(ids)) == 60
    assert ids == sorted(ids)
    found = _get(tiny_served, "/api/accounts/acct-a2/exchanges?q=GENERATE 5 NEW").json()
    assert found["total"] == 30 and all("Generate 5 new" in r["prompt"] for r in found["rows"])
    odd = _get(tiny_served, "/api/accounts/acct-a2/exchanges", params={"q": "%' OR 1=1 --"})
    assert odd.status_code == 200 and odd.json()["total"] == 0
    html = _get(tiny_served, "/accounts/acct-a2?page=2").text
    assert "page 2 of 3" in html and 'rel="prev"' in html and 'rel="next"' in html
    assert "pay-shared-1" in html and "acct-a1" in html


def test_highlights_mark_what_the_lexicon_matched(tiny_served: Served) -> None:
    rows = _get(tiny_served, "/api/accounts/acct-a2/exchanges").json()["rows"]
    graded = next(r for r in rows if r["prompt"].startswith("Rate the following"))
    marked = {(text, tuple(t), s) for text, t, s in graded["highlights"] if t}
    assert ("Rate the following two responses", ("grading",), "strong") in marked
    assert ("on a scale of 1 to 10", ("grading",), "strong") in marked
    html = _get(tiny_served, "/accounts/acct-a2").text
    assert '<mark class="t1" title="grading (strong pattern)">on a scale of 1 to 10</mark>' in html


def test_attacker_text_is_escaped_everywhere(tiny_served: Served) -> None:
    pages = [_get(tiny_served, "/").text, _get(tiny_served, "/campaigns/C1").text,
             _get(tiny_served, "/accounts/acct-a1").text,
             _get(tiny_served, "/accounts/" + quote(HOSTILE_ACCOUNT, safe="")).text]
    for html in pages:
        assert "window.__pwned" not in re.sub(r"&[a-z#0-9]+;", "", html) or "<script>window" \
            not in html
        assert "<script>window" not in html and "<img src=x" not in html
        assert 'href="javascript:' not in html and "onerror=" not in html.replace(
            "onerror=&#34;", "").replace("onerror=&quot;", "")
    account = pages[2]
    assert "&lt;script&gt;window.__pwned = 1; alert(1)&lt;/script&gt;" in account
    assert "&lt;a href=&#34;javascript:window.__pwned = 3&#34;&gt;click me&lt;/a&gt;" in account
    assert "{{ 7 * 7 }}" in account and "49" not in account.split("{{ 7 * 7 }}")[1][:5]
    assert "&lt;img src=x onerror=&#34;window.__pwned=5&#34;&gt;" in pages[3]


def test_hostile_account_id_in_urls_and_api(tiny_served: Served) -> None:
    encoded = quote(HOSTILE_ACCOUNT, safe="")
    assert f'href="/accounts/{encoded}"' in _get(tiny_served, "/campaigns/C1").text
    api = _get(tiny_served, f"/api/accounts/{encoded}/exchanges").json()
    assert api["total"] == 60
    lookup = httpx.get(tiny_served.url + "/accounts", params={"id": HOSTILE_ACCOUNT},
                       follow_redirects=False)
    assert lookup.status_code == 303 and lookup.headers["location"] == f"/accounts/{encoded}"


def test_decisions_are_posted_with_the_form_token_and_kept(tiny_served: Served) -> None:
    token = _form_token(_get(tiny_served, "/campaigns/C1").text)
    form = {"form_token": token, "kind": "campaign", "subject": "C1", "decision": "confirmed",
            "note": "matches the <b>report</b>", "analyst": "ana"}
    missing = httpx.post(tiny_served.url + "/decisions", data={**form, "form_token": "x"})
    assert missing.status_code == 403 and "form token" in missing.text
    foreign = httpx.post(tiny_served.url + "/decisions", data=form,
                         headers={"origin": "http://evil.example"})
    assert foreign.status_code == 403 and "cross-site" in foreign.text
    as_json = httpx.post(tiny_served.url + "/decisions", json=form)
    assert as_json.status_code == 400
    unknown = httpx.post(tiny_served.url + "/decisions", data={**form, "subject": "C7"})
    assert unknown.status_code == 400 and "no campaign" in unknown.text
    ok = httpx.post(tiny_served.url + "/decisions", data=form,
                    headers={"origin": tiny_served.url}, follow_redirects=False)
    assert ok.status_code == 303 and ok.headers["location"] == "/campaigns/C1"
    page = _get(tiny_served, "/campaigns/C1").text
    assert 'data-decision="confirmed"' in page and "matches the &lt;b&gt;report&lt;/b&gt;" in page
    account = _get(tiny_served, "/accounts/acct-a3").text
    assert 'data-decision="confirmed"' in account and "(on its campaign C1)" in account
    labels = [orjson.loads(line) for line in _get(tiny_served, "/decisions/labels.jsonl").text
              .splitlines()]
    assert sorted(row["account_id"] for row in labels) == sorted(CAMPAIGN)
    assert {row["actor"] for row in labels} == {"confirmed campaign C1"}
    dismiss = {**form, "kind": "account", "subject": "acct-a4", "decision": "dismissed"}
    assert httpx.post(tiny_served.url + "/decisions", data=dismiss).status_code == 303
    labels = {row["account_id"]: row for row in (
        orjson.loads(line) for line in _get(tiny_served, "/decisions/labels.jsonl").text
        .splitlines())}
    assert labels["acct-a4"]["actor"] is None and labels["acct-a4"]["decision"] == "dismissed"
    listing = _get(tiny_served, "/decisions").text
    assert listing.count('<span class="badge confirmed">') == 1
    assert listing.count('<span class="badge dismissed">') == 1


def test_token_guards_every_page_and_call(tiny: StoreCase) -> None:
    for served in serve(tiny, token="s3cret-token"):
        assert _get(served, "/").status_code == 401
        assert _get(served, "/api/overview").json()["error"]["status"] == 401
        assert _get(served, "/static/app.css").status_code == 401
        assert _get(served, "/?token=wrong").status_code == 401
        assert _get(served, "/", headers={"authorization": "Bearer s3cret-token"}).status_code \
            == 200
        swap = _get(served, "/campaigns/C1?token=s3cret-token&x=1", follow_redirects=False)
        assert swap.status_code == 303 and swap.headers["location"] == "/campaigns/C1?x=1"
        cookie = swap.headers["set-cookie"]
        assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
        assert "s3cret-token" not in cookie
        with httpx.Client(base_url=served.url) as client:
            client.get("/?token=s3cret-token")
            assert client.get("/campaigns/C1").status_code == 200


def test_other_host_names_are_refused(tiny_served: Served) -> None:
    rebound = _get(tiny_served, "/", headers={"host": "attacker.example"})
    assert rebound.status_code == 400
    assert _get(tiny_served, "/", headers={"host": "localhost:8800"}).status_code == 200


def test_report_is_one_self_contained_file(tiny_served: Served) -> None:
    export = _get(tiny_served, "/export/report.html")
    assert export.status_code == 200 and "attachment" in export.headers["content-disposition"]
    html = render_report(tiny_served.opened.queries)
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert '<link rel="stylesheet"' not in html and 'src="/static' not in html
    assert 'id="campaign-C1"' in html and 'id="graph-data-C1"' in html
    graph = orjson.loads(re.search(r'id="graph-data-C1">(.*?)</script>', html, re.S).group(1))  # type: ignore[union-attr]
    assert len(graph["nodes"]) == len(CAMPAIGN)
    csp = unescape(re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"',
                             html).group(1))  # type: ignore[union-attr]
    hashes = re.findall(r"'sha256-([^']+)'", csp)
    scripts = re.findall(r"<script>(.*?)</script>", html, re.S)
    assert sorted(hashes) == sorted(base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()
                                    for s in scripts)
    assert "<script>window" not in html


@pytest.mark.parametrize("path", ["/", "/campaigns/C1", "/accounts/acct-a1", "/decisions"])
def test_pages_answer_fast_enough_to_measure(tiny_served: Served, path: str) -> None:
    """Each page renders (no timing asserted here: benchmarks/dashboard.py measures)."""
    assert _get(tiny_served, path).status_code == 200


def test_large_graphs_keep_each_accounts_strongest_ties(tiny_served: Served,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from distillguard.dashboard import queries

    full = tiny_served.opened.queries.campaign_graph("C1")
    assert full is not None and full["edges_total"] == len(full["edges"])
    monkeypatch.setattr(queries, "GRAPH_ALL_EDGES_UP_TO", 2)
    monkeypatch.setattr(queries, "GRAPH_TIES_PER_ACCOUNT", 1)
    cut = tiny_served.opened.queries.campaign_graph("C1")
    assert cut is not None and cut["edges_total"] == full["edges_total"]
    assert len(cut["nodes"]) == len(CAMPAIGN) and len(cut["edges"]) < len(full["edges"])
    tied = {a for e in cut["edges"] for a in e[:2]}
    assert tied == {n["id"] for n in full["nodes"] if any(n["id"] in e[:2] for e in full["edges"])}
    assert all(e in full["edges"] for e in cut["edges"])
