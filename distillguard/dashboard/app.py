"""The dashboard as a Starlette app: server-rendered pages, a small JSON API, decisions.

Pages: ``/`` (overview), ``/campaigns/{id}``, ``/accounts/{id}`` (``?page=&q=``),
``/decisions``; API: ``/api/campaigns/{id}/graph``,
``/api/accounts/{id}/exchanges``, ``/api/overview``; ``POST /decisions``;
exports: ``/decisions/labels.jsonl``, ``/export/report.html``. Errors answer
as a page, or as ``{"error": {"status", "message"}}`` under ``/api/``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from distillguard.dashboard.decisions import decision_labels, record_decision
from distillguard.dashboard.queries import DashboardQueries
from distillguard.dashboard.render import (
    account_url,
    page_url,
    render_page,
    render_report,
    traffic_spec,
)
from distillguard.dashboard.security import DashboardGuard, FormTokens, check_post
from distillguard.errors import DistillguardError, EngineError, InputError

__all__ = ["MAX_FORM_BYTES", "MAX_PAGE", "dashboard_app"]

MAX_FORM_BYTES = 16_384
MAX_PAGE = 10**9
_STATUS_TITLES = {400: "Bad request", 401: "Unauthorized", 403: "Refused", 404: "Not found",
                  413: "Too large", 500: "Server error"}


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data, default=str), status, media_type="application/json")


def _page_number(value: str | None) -> int:
    """``?page=``: a whole number from 1 (past the last page, the last page answers)."""
    if value is None:
        return 1
    try:
        number = int(value)
    except ValueError:
        number = 0
    if not 1 <= number <= MAX_PAGE:
        raise HTTPException(400, f"page must be a whole number from 1 to {MAX_PAGE:,}, "
                                 f"not {value[:40]!r}")
    return number


class _Pages:
    """Route handlers over one ``DashboardQueries``."""

    def __init__(self, queries: DashboardQueries, tokens: FormTokens, analyst: str) -> None:
        self.q = queries
        self.tokens = tokens
        self.analyst = analyst

    def _page(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        return HTMLResponse(render_page(template, self.q, form_token=self.tokens.value,
                                        analyst=self.analyst, **context), status)

    async def overview(self, request: Request) -> Response:
        o = self.q.overview()
        return self._page("overview.html", nav="overview", o=o, notice=None,
                          traffic_spec=traffic_spec(o["traffic"], o["campaigns"], o["releases"]))

    async def campaign(self, request: Request) -> Response:
        data = self.q.campaign(request.path_params["campaign_id"])
        if data is None:
            raise HTTPException(404, "No such campaign in these findings.")
        return self._page("campaign.html", data=data)

    async def account_lookup(self, request: Request) -> Response:
        wanted = request.query_params.get("id", "").strip()
        if not wanted:
            return RedirectResponse("/", 303)
        return RedirectResponse(account_url(wanted), 303)

    def _exchanges(self, request: Request, account_id: str) -> Any:
        return self.q.account_exchanges(account_id,
                                        page=_page_number(request.query_params.get("page")),
                                        q=request.query_params.get("q", "")[:200])

    async def account(self, request: Request) -> Response:
        account_id = request.path_params["account_id"]
        data = self.q.account(account_id)
        if data is None:
            raise HTTPException(404, "No such account in the store or the findings.")
        page = self._exchanges(request, account_id)
        base = account_url(account_id)
        return self._page("account.html", a=data, page=page,
                          page_url=lambda n: page_url(base, page=n, q=page["q"]))

    async def decisions(self, request: Request) -> Response:
        return self._page("decisions.html", nav="decisions",
                          decisions=list(reversed(self.q.decisions())))

    async def decide(self, request: Request) -> Response:
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            raise HTTPException(413, "The form is too large.")
        if request.headers.get("content-type", "").split(";")[0].strip() != \
                "application/x-www-form-urlencoded":
            raise HTTPException(400, "Decisions are sent as a form.")
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        refused = check_post(request, form, self.tokens)
        if refused is not None:
            raise HTTPException(403, refused)
        kind, subject = form.get("kind", ""), form.get("subject", "")
        record_decision(self.q.con, self.q.findings, kind=kind, subject=subject,
                        decision=form.get("decision", ""), note=form.get("note", "").strip(),
                        analyst=form.get("analyst", "").strip() or self.analyst)
        target = (f"/campaigns/{subject}" if kind == "campaign" else account_url(subject))
        return RedirectResponse(target if subject in self.q.campaigns or kind == "account"
                                else "/decisions", 303)

    async def labels(self, request: Request) -> Response:
        lines = b"".join(orjson.dumps(row) + b"\n" for row in decision_labels(self.q.decisions()))
        return Response(lines, media_type="application/x-ndjson", headers={
            "content-disposition": 'attachment; filename="decision-labels.jsonl"'})

    async def report(self, request: Request) -> Response:
        return HTMLResponse(render_report(self.q), headers={
            "content-disposition": 'attachment; filename="distillguard-report.html"'})

    async def api_overview(self, request: Request) -> Response:
        o = self.q.overview()
        return _json({"input": o["input"], "counts": o["counts"],
                      "campaigns": [{k: c[k] for k in ("campaign_id", "score", "exchanges",
                                                        "techniques")}
                                    | {"accounts": len(c["accounts"])} for c in o["campaigns"]]})

    async def api_graph(self, request: Request) -> Response:
        graph = self.q.campaign_graph_json(request.path_params["campaign_id"])
        if graph is None:
            raise HTTPException(404, "No such campaign in these findings.")
        return Response(graph, 200, media_type="application/json")

    async def api_exchanges(self, request: Request) -> Response:
        account_id = request.path_params["account_id"]
        if self.q.account_profile(account_id) is None:
            raise HTTPException(404, "No such account in the store.")
        page = self._exchanges(request, account_id)
        rows = [{k: v for k, v in r.items() if k != "segments"} |
                {"highlights": [[s.text, list(s.techniques), s.strength]
                                for s in r["segments"]]} for r in page["rows"]]
        return _json({**page, "rows": rows})


def _error_handler(pages: _Pages) -> Any:
    async def handle(request: Request, exc: Exception) -> Response:
        if isinstance(exc, HTTPException):
            status, message = exc.status_code, str(exc.detail)
            if status == 404 and message == "Not Found":
                message = f"Nothing at {request.url.path}."
            elif status == 405:
                message = f"{request.method} is not answered at {request.url.path}."
        elif isinstance(exc, InputError):
            status, message = 400, str(exc)
        elif isinstance(exc, EngineError):
            status, message = 500, f"The store failed: {exc}"
        else:
            status, message = 500, str(exc)
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": {"status": status, "message": message}}, status)
        return pages._page("error.html", status=status, code=status,
                           title=_STATUS_TITLES.get(status, "Error"), message=message)
    return handle


def dashboard_app(queries: DashboardQueries, *, token: str | None = None,
                  allowed_hosts: Iterable[str] | None = None, analyst: str = "",
                  form_secret: str | None = None) -> Starlette:
    """The dashboard over ``queries``. ``token``: required on every request;
    ``allowed_hosts``: the ``Host`` names answered (None: any)."""
    pages = _Pages(queries, FormTokens(form_secret), analyst)
    static = Path(__file__).parent / "static"
    routes = [
        Route("/", pages.overview),
        Route("/campaigns/{campaign_id}", pages.campaign),
        Route("/accounts", pages.account_lookup),
        Route("/accounts/{account_id:path}", pages.account),
        Route("/decisions", pages.decisions, methods=["GET"]),
        Route("/decisions", pages.decide, methods=["POST"]),
        Route("/decisions/labels.jsonl", pages.labels),
        Route("/export/report.html", pages.report),
        Route("/api/overview", pages.api_overview),
        Route("/api/campaigns/{campaign_id}/graph", pages.api_graph),
        Route("/api/accounts/{account_id:path}/exchanges", pages.api_exchanges),
        Mount("/static", StaticFiles(directory=static), name="static"),
    ]
    handler = _error_handler(pages)
    return Starlette(routes=routes, middleware=[
        Middleware(DashboardGuard, token=token, allowed_hosts=allowed_hosts)],
        exception_handlers={HTTPException: handler, DistillguardError: handler,
                            Exception: handler})
