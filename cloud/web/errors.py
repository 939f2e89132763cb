"""Error pages for people: under ``/ui`` a browser gets a page inside the dashboard's layout
saying what went wrong and what to do, never raw JSON or a validation dump; everything else
(the JSON API, and the dashboard's own ``fetch`` calls) keeps FastAPI's JSON errors.

A request gets a page when its path is under ``/ui`` and it is a browser's navigation: it
accepts ``text/html``, or it is a plain GET of a page (not the event stream or the chart data
the page's script fetches). Unexpected errors (500) get a page too, without any detail: the
detail goes to the log only.

A database that cannot be reached or is too busy (restarting, failing over, out of connections,
a statement timeout) is not a bug of ours: every route answers 503 with ``Retry-After`` then,
so clients and people retry instead of reporting a 500.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from fastapi import FastAPI, Request, Response
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from psycopg import InterfaceError, OperationalError
from psycopg_pool import PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from cloud.web.headers import DASHBOARD, DASHBOARD_PREFIX, EVERYWHERE
from cloud.web.pages import e, frame

log = logging.getLogger(__name__)
App = TypeVar("App", bound=FastAPI)

DATA_PATHS = frozenset({"/ui/events", "/ui/history", "/ui/history.csv"})
"""Fetched by the page's script, which reads their JSON errors."""

_TITLES: dict[int, tuple[str, str]] = {
    400: ("The request could not be read", "Go back and try again."),
    401: ("You are not signed in", "Sign in again: <a href='/ui/login'>sign in</a>."),
    403: ("Your role may not do this",
          "Ask a QA user or an administrator to do it, or to give you the role it needs."),
    404: ("Not found", "It may have been removed, or the address is mistyped."
          " Go back to the <a href='/ui'>overview</a>."),
    409: ("This cannot be done now", "Reload the page: what it shows may have changed."),
    422: ("Something in the request is not right", "Go back, correct it and try again."),
    500: ("Something went wrong on the server",
          "Nothing you did caused it. Try again in a minute; if it keeps happening, tell your"
          " administrator the time it happened."),
    503: ("Not available right now", "Try again in a minute."),
}  # fmt: skip


def wants_page(request: Request) -> bool:
    """A browser navigating the dashboard (not a script fetching data, not the API)."""
    path = request.url.path
    if path != DASHBOARD_PREFIX and not path.startswith(DASHBOARD_PREFIX + "/"):
        return False
    if "text/html" in request.headers.get("accept", ""):
        return True
    return request.method == "GET" and path not in DATA_PATHS


def error_page(status: int, detail: str | None = None, problems: Sequence[str] = ()) -> str:
    """The page for ``status``: what happened, the server's reason, and what to do."""
    title, todo = _TITLES.get(status, _TITLES[500 if status >= 500 else 400])
    said = f"<p class='reason'>{e(detail)}</p>" if detail else ""
    listed = "".join(f"<li>{e(p)}</li>" for p in problems)
    items = f"<ul class='problems'>{listed}</ul>" if listed else ""
    body = (
        f"<section class='error-page' data-status='{status}'><h2>{e(title)}</h2>{said}{items}"
        f"<p class='todo'>{todo}</p><p class='code'>Error {status}</p></section>"
    )
    return frame(title, body, user=None, script=False)


def _problem(item: dict[str, Any]) -> str:
    """One validation error in words: ``lot_id: Input should be a valid integer``."""
    loc = [str(p) for p in item.get("loc", ()) if p not in ("path", "query", "body")]
    where = ".".join(loc).replace("_", " ")
    return f"{where}: {item.get('msg', 'not valid')}" if where else str(item.get("msg", ""))


def _html(status: int, content: str, headers: Mapping[str, str] | None = None) -> HTMLResponse:
    return HTMLResponse(content, status_code=status, headers={**(headers or {})})


async def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if not wants_page(request):
        return await http_exception_handler(request, exc)
    detail = exc.detail if isinstance(exc.detail, str) else None
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"There is no page at {request.url.path}."
    return _html(exc.status_code, error_page(exc.status_code, detail), exc.headers)


async def on_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    if not wants_page(request):
        return await request_validation_exception_handler(request, exc)
    problems = [_problem(item) for item in exc.errors()[:20]]
    return _html(422, error_page(422, None, problems))


DATABASE_UNAVAILABLE = (OperationalError, InterfaceError, PoolTimeout)
RETRY_AFTER = {"Retry-After": "5"}


async def on_database_unavailable(request: Request, exc: Exception) -> Response:
    log.warning("%s %s: database unavailable: %s", request.method, request.url.path, exc)
    detail = "The database is unreachable or too busy right now. Try again shortly."
    if wants_page(request):
        return _html(503, error_page(503, detail), RETRY_AFTER)
    return JSONResponse({"detail": detail}, status_code=503, headers=RETRY_AFTER)


async def on_unexpected(request: Request, exc: Exception) -> Response:
    """Starlette's last resort (it re-raises afterwards, so the error is still logged)."""
    if not wants_page(request):
        return PlainTextResponse("Internal Server Error", status_code=500)
    # Outside every middleware here: the dashboard's security headers are set by hand.
    return _html(500, error_page(500), {**EVERYWHERE, **DASHBOARD})


def install_error_pages(app: App) -> App:
    """Registers the handlers on ``app`` (the JSON API's errors are unchanged)."""
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    for unavailable in DATABASE_UNAVAILABLE:
        app.add_exception_handler(unavailable, on_database_unavailable)
    app.add_exception_handler(Exception, on_unexpected)
    return app
