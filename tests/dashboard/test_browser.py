"""The dashboard in a real browser: Debian's Chromium, headless, driven by Playwright.

Every page the tests open is saved as a screenshot (in ``DISTILLGUARD_SCREENSHOTS``
when set, else in pytest's temporary folder) so that a person can look at them;
``docs/dashboard-overview.png`` and ``docs/dashboard-campaign.png`` come from here.

A hostile prompt is checked twice over: no script it carries runs (``window.__pwned``
stays unset, no dialog opens) and the page breaks no rule of its own Content Security
Policy (an inline script or handler that slipped through escaping would be blocked by
the policy but reported as a violation; the test counts them).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.dashboard.conftest import HOSTILE_ACCOUNT, HOSTILE_PROMPTS, Served, StoreCase, serve

pytestmark = pytest.mark.slow

# Counts violations of the page's Content Security Policy and dialogs (alert/confirm).
WATCH = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__violations.push(e.violatedDirective + " " + (e.sample || e.blockedURI));
});
"""


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    wanted = os.environ.get("DISTILLGUARD_SCREENSHOTS")
    folder = Path(wanted) if wanted else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def scanned_served(scanned: StoreCase) -> Iterator[Served]:
    yield from serve(scanned)


class Watched:
    """A page with its dialogs and policy violations recorded."""

    def __init__(self, page: Any, shots: Path) -> None:
        self.page = page
        self.shots = shots
        self.dialogs: list[str] = []
        page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        page.add_init_script(WATCH)

    def open(self, url: str) -> Any:
        response = self.page.goto(url, wait_until="load")
        self.settle()
        return response

    def settle(self) -> None:
        """Wait until every graph on the page has stopped moving (or failed)."""
        self.page.wait_for_function(
            "() => Array.from(document.querySelectorAll('.graphbox')).every(b => "
            "['settled', 'failed'].includes(b.getAttribute('data-state')))", timeout=60_000)

    def shot(self, name: str) -> Path:
        """The whole page as ``name.png`` and its first screens as ``name-top.png``."""
        path = self.shots / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        self.page.screenshot(path=str(self.shots / f"{name}-top.png"), full_page=True,
                             clip={"x": 0, "y": 0, "width": 1360, "height": 1700})
        return path

    def assert_nothing_ran(self, own_inline_scripts: int = 0) -> None:
        """No hostile script ran or was even present; the page's own inline scripts (the
        report carries its two, allowed by hash) are ``own_inline_scripts``."""
        assert self.page.evaluate("window.__pwned") is None
        assert self.dialogs == []
        assert self.page.evaluate("window.__violations") == []
        assert self.page.locator("img[src='x'], a[href^='javascript:']").count() == 0
        inline = self.page.locator("script:not([src]):not([type='application/json'])")
        assert inline.count() == own_inline_scripts


@pytest.fixture
def watched(page: Any, screenshots: Path) -> Watched:
    return Watched(page, screenshots)


def test_overview_top_campaign_graph_decision_kept(scanned_served: Served,
                                                   watched: Watched) -> None:
    findings = scanned_served.case.findings
    ranked = sorted(findings["campaigns"], key=lambda c: -c["score"])
    page = watched.page
    assert watched.open(scanned_served.url + "/").status == 200
    rows = page.locator("#campaigns tbody tr")
    assert rows.count() == len(ranked)
    assert rows.first.get_attribute("data-campaign") == ranked[0]["campaign_id"]
    assert page.locator("[data-chart='stacked'] svg").count() == 1
    assert page.locator("[data-chart='stacked'] .release").count() >= 1
    watched.shot("overview")

    rows.first.locator("a").first.click()
    page.wait_for_url(f"**/campaigns/{ranked[0]['campaign_id']}")
    watched.settle()
    box = page.locator(".graphbox")
    accounts = len(ranked[0]["accounts"])
    assert box.get_attribute("data-state") == "settled"
    assert box.get_attribute("data-rendered-nodes") == str(accounts)
    assert int(box.get_attribute("data-rendered-edges") or 0) >= accounts - 1
    assert page.locator(".legend [data-kind]").count() >= 1
    assert page.locator("[data-chart='shares'] svg").count() >= 1
    assert page.locator("pre mark").count() >= 1
    watched.shot("campaign")

    form = page.locator("form.decide")
    form.locator("input[name=note]").fill("same templates as case 1182 <script>x</script>")
    form.locator("button.confirm").click()
    page.wait_for_url(f"**/campaigns/{ranked[0]['campaign_id']}")
    page.reload()
    watched.settle()
    kept = page.locator("[data-decision]")
    assert kept.get_attribute("data-decision") == "confirmed"
    assert "same templates as case 1182 <script>x</script>" in kept.inner_text()
    watched.open(scanned_served.url + "/")
    assert page.locator(f"tr[data-campaign='{ranked[0]['campaign_id']}'] .badge.confirmed"
                        ).count() == 1
    watched.open(scanned_served.url + "/decisions")
    assert page.locator("table.data tbody tr").count() == 1
    watched.shot("decisions")
    watched.assert_nothing_ran()


def test_hostile_requests_render_as_text(scanned_served: Served, watched: Watched) -> None:
    """The account that sent the hostile prompts (after the scan): its first page of
    exchanges holds them, shown as text."""
    target = scanned_served.case.findings["campaigns"][0]["accounts"][0]
    watched.open(f"{scanned_served.url}/accounts/{quote(target, safe='')}?q=pwned")
    shown = watched.page.locator(".request.exchange pre")
    assert shown.count() == len(HOSTILE_PROMPTS)
    texts = shown.all_inner_texts()
    for prompt in HOSTILE_PROMPTS:
        assert any(prompt in t for t in texts)
    watched.shot("account-hostile")
    watched.assert_nothing_ran()


def test_hostile_ids_and_samples_on_every_page(tiny_served: Served, watched: Watched) -> None:
    url = tiny_served.url
    for path in ("/", "/campaigns/C1", "/accounts/acct-a1",
                 "/accounts/" + quote(HOSTILE_ACCOUNT, safe=""), "/decisions"):
        watched.open(url + path)
        watched.assert_nothing_ran()
    page = watched.page
    watched.open(url + "/campaigns/C1")
    assert "<script>window.__pwned=6</script>" in page.locator(".reasons").inner_text()
    samples = page.locator(".request.sample pre").all_inner_texts()
    assert HOSTILE_PROMPTS[0] in samples[0] or HOSTILE_PROMPTS[0] in "".join(samples)
    node = page.locator(f"table.members a:text-is('{HOSTILE_ACCOUNT}')")
    assert node.count() == 1
    node.click()
    page.wait_for_load_state("load")
    assert page.locator("h1").inner_text() == HOSTILE_ACCOUNT
    watched.shot("account-hostile-id")
    watched.assert_nothing_ran()


def test_account_pages_and_search_in_the_browser(tiny_served: Served, watched: Watched) -> None:
    page = watched.page
    watched.open(tiny_served.url + "/accounts/acct-a2")
    assert page.locator(".pager").inner_text().count("page 1 of 3") == 1
    first = page.locator(".request.exchange .meta .mono").first.inner_text()
    page.locator(".pager a[rel=next]").click()
    page.wait_for_load_state("load")
    assert "page 2 of 3" in page.locator(".pager").inner_text()
    assert page.locator(".request.exchange .meta .mono").first.inner_text() > first
    page.fill("input[name=q]", "generate 5 NEW")
    page.press("input[name=q]", "Enter")
    page.wait_for_load_state("load")
    assert "30 matching" in page.locator("#exchanges h2").inner_text()
    assert page.locator("#exchanges mark").count() >= 1
    watched.shot("account")
    watched.assert_nothing_ran()


def test_token_in_the_browser(tiny: StoreCase, watched: Watched) -> None:
    page = watched.page
    for served in serve(tiny, token="browser-token"):
        refused = page.goto(served.url + "/")
        assert refused is not None and refused.status == 401
        page.goto(served.url + "/campaigns/C1?token=browser-token")
        assert re.search(r"/campaigns/C1$", page.url)
        watched.settle()
        assert page.locator(".graphbox").get_attribute("data-rendered-nodes") == "5"
        page.locator("form.decide input[name=note]").fill("seen with a token")
        page.locator("form.decide button.dismiss").click()
        page.wait_for_url("**/campaigns/C1")
        assert page.locator("[data-decision]").get_attribute("data-decision") == "dismissed"
        watched.assert_nothing_ran()


def test_report_file_renders_offline(tiny_served: Served, watched: Watched,
                                     tmp_path: Path) -> None:
    """The exported report opened from disk: graphs drawn from the data inside it, nothing
    fetched, no hostile text run."""
    from distillguard.dashboard import render_report
    from distillguard.dashboard.render import SCRIPTS

    report = tmp_path / "report.html"
    report.write_text(render_report(tiny_served.opened.queries), encoding="utf-8")
    fetched: list[str] = []
    watched.page.on("request", lambda r: fetched.append(r.url))
    watched.open(report.as_uri())
    assert fetched == [report.as_uri()]
    assert watched.page.locator(".graphbox").get_attribute("data-rendered-nodes") == "5"
    watched.shot("report")
    watched.assert_nothing_ran(own_inline_scripts=len(SCRIPTS))
