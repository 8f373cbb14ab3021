"""The explorer's web app (Starlette, server-side Jinja2 pages, Plotly charts).

Read-only: every page opens the warehouse read-only for the request and closes it. Routes:

    /                         search (?q=)
    /customers/{id}           customer 360
    /explain?a=REF&b=REF      why two records are (not) one customer
    /segments                 segment list
    /segments/{name}          one segment
    /segments/{name}/export.csv   members who may be contacted, as CSV (?masked=1 masks)
    /quality                  identity quality
    /kpis                     channel KPIs
    /healthz                  liveness (no data)
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cdp.config import ConfigError, Settings
from cdp.errors import CdpError
from cdp.web import charts
from cdp.web.customer import is_erased, load_customer
from cdp.web.db import WarehouseUnavailable, read_warehouse
from cdp.web.render import STATIC_DIR, kpi_context, quality_context, render
from cdp.web.search import MAX_RESULTS, interpret, search
from cdp.web.security import Hardening, TokenGate
from cdp.web.segments import UnknownSegment, detail, export_csv, overview

log = logging.getLogger(__name__)


def _page(template: str, status: int = 200, **context: Any) -> HTMLResponse:
    return HTMLResponse(render(template, **context), status_code=status)


def _error(heading: str, message: str, status: int) -> HTMLResponse:
    return _page("error.html", status=status, heading=heading, message=message)


def create_app(settings: Settings, token: str | None = None,
               allowed_hosts: list[str] | None = None) -> Starlette:
    """The explorer over `settings`' warehouse. `token`: required on every request when set.
    `allowed_hosts`: the Host names accepted (None: any; `serve` sets it on loopback)."""

    def home(request: Request) -> Response:
        q = request.query_params.get("q", "")
        query = interpret(settings, q)
        results: list[dict[str, Any]] = []
        if not query.empty:
            with read_warehouse(settings) as reader:
                results = search(reader, query)
        return _page("search.html", nav="search", home=True, q=q, query=query, results=results,
                     limit=MAX_RESULTS)

    def customer(request: Request) -> Response:
        customer_id = request.path_params["customer_id"]
        with read_warehouse(settings) as reader:
            if is_erased(reader, customer_id):
                raise HTTPException(410, "this customer was erased on request")
            found = load_customer(settings, reader, customer_id)
        if found is None:
            raise HTTPException(404, f"no customer {customer_id}")
        explained = [{**e, "figure": charts.contributions(e["score"])} for e in found.explained]
        timeline_figure = (charts.customer_timeline(found.timeline_by_channel)
                           if found.timeline_by_channel else None)
        return _page("customer.html", nav="search", c=found, explained=explained,
                     timeline_figure=timeline_figure, has_charts=True,
                     threshold=settings.identity.match_threshold)

    def explain(request: Request) -> Response:
        from identity.explain import explain_records

        a, b = request.query_params.get("a", ""), request.query_params.get("b", "")
        if not a or not b:
            raise HTTPException(400, "give two records: /explain?a=channel:id&b=channel:id")
        try:
            summary = explain_records(settings, a, b)
        except (CdpError, ConfigError) as exc:
            raise HTTPException(404, str(exc)) from None
        score = summary.figures.get("model")
        return _page("explain.html", nav="search", a=a, b=b,
                     same=summary.figures.get("same_customer"), rows=summary.rows,
                     notes=summary.notes, customers=summary.figures.get("customers", []),
                     figure=charts.contributions(score) if score else None,
                     has_charts=bool(score))

    def segments(request: Request) -> Response:
        with read_warehouse(settings) as reader:
            data = overview(settings, reader)
        figure = charts.segment_sizes(data["segments"]) if data["segments"] else None
        return _page("segments.html", nav="segments", data=data, figure=figure,
                     has_charts=bool(figure))

    def segment(request: Request) -> Response:
        with read_warehouse(settings) as reader:
            data = detail(settings, reader, request.path_params["name"])
        figure = charts.segment_history(data["history"]) if data["history"] else None
        return _page("segment.html", nav="segments", s=data, figure=figure,
                     has_charts=bool(figure))

    def export(request: Request) -> Response:
        name = request.path_params["name"]
        masked = request.query_params.get("masked") in ("1", "true", "yes")
        with read_warehouse(settings) as reader:
            text, rows = export_csv(reader, name, masked=masked)
        filename = f"segment_{name}{'_masked' if masked else ''}.csv"
        return Response(text, media_type="text/csv; charset=utf-8", headers={
            "content-disposition": f'attachment; filename="{filename}"',
            "x-cdp-rows": str(rows)})

    def quality(request: Request) -> Response:
        with read_warehouse(settings) as reader:
            context = quality_context(settings, reader)
        return _page("quality.html", nav="quality", has_charts=True, **context)

    def kpis(request: Request) -> Response:
        with read_warehouse(settings) as reader:
            context = kpi_context(reader)
        return _page("kpis.html", nav="kpis", has_charts=context["kpis"] is not None,
                     **context)

    def healthz(request: Request) -> Response:
        return PlainTextResponse("ok")

    def plotly_js(request: Request) -> Response:
        return FileResponse(charts.plotly_js_path(), media_type="text/javascript",
                            headers={"cache-control": "public, max-age=86400"})

    async def unavailable(request: Request, exc: Exception) -> Response:
        return _error("The warehouse cannot be read right now", str(exc), 503)

    async def unknown_segment(request: Request, exc: Exception) -> Response:
        return _error("Not found", str(exc), 404)

    async def not_ready(request: Request, exc: Exception) -> Response:
        return _error("This page cannot be shown yet", str(exc), 503)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        heading = {404: "Not found", 410: "Gone", 400: "Bad request"}.get(
            exc.status_code, "Error")
        return _error(heading, exc.detail, exc.status_code)

    routes = [
        Route("/", home),
        Route("/customers/{customer_id}", customer),
        Route("/explain", explain),
        Route("/segments", segments),
        Route("/segments/{name}", segment),
        Route("/segments/{name}/export.csv", export),
        Route("/quality", quality),
        Route("/kpis", kpis),
        Route("/healthz", healthz),
        Route("/static/vendor/plotly.min.js", plotly_js),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    middleware = [Middleware(Hardening, allowed_hosts=allowed_hosts)]
    if token:
        middleware.append(Middleware(TokenGate, token=token,
                                     login_page=lambda **kw: render("login.html", **kw)))
    middleware.append(Middleware(ErrorPage))
    return Starlette(
        routes=routes, middleware=middleware,
        exception_handlers={
            WarehouseUnavailable: unavailable, UnknownSegment: unknown_segment,
            CdpError: not_ready, ConfigError: not_ready, HTTPException: http_error,
        })


class ErrorPage:
    """ASGI middleware: an unexpected error becomes a plain 500 page, and the log gets the path
    and the exception's type only (its message or a traceback could quote personal data)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as exc:
            log.error("%s failed: %s", scope["path"], type(exc).__name__)
            if not started:
                await _error("Something went wrong", f"The page failed ({type(exc).__name__}); "
                             "the server log names the page.", 500)(scope, receive, send)
