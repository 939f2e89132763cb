"""``/ui/login/oidc``: sign in through the site's OpenID Connect provider (when configured).

The provider proves who the person is; coldtrace still decides whether they may come in: the
user must exist, be enabled and not locked, and keeps the role an administrator gave them.
The ``state`` sent to the provider is also kept in a short-lived cookie of the browser that
started, and the callback is accepted only with it: otherwise anyone could start a sign-in as
themselves, stop before the callback and send its link to someone else, whose browser would then
be signed in as them (login CSRF; RFC 6749 10.12). The cookie is ``SameSite=Lax``: the callback
is a top-level navigation from the provider's site, which a Strict cookie would not follow.

The HTTP client is ``app.state.oidc_http`` when set (tests put a client to a fake provider
there), else a client of its own per sign-in.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated
from urllib.parse import parse_qs, urlsplit

import httpx
from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from fastapi.responses import HTMLResponse, RedirectResponse
from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from cloud.accounts import SignInError
from cloud.accounts.oidc import PENDING, finish, start
from cloud.accounts.sessions import open_person_session
from cloud.accounts.settings import OidcSettings
from cloud.api.deps import Pool, Settings
from cloud.auth.service import audit
from cloud.web import pages
from cloud.web.session import COOKIE, is_https, policy, web_settings

Param = Annotated[str, Query(min_length=1, max_length=2048, pattern=r"^[\x21-\x7e]+$")]
STATE_COOKIE = "coldtrace_oidc_state"
STATE_PATH = "/ui/login/oidc"
NOT_STARTED_HERE = "This sign-in was not started in this browser, or took too long: start again."


@asynccontextmanager
async def _http(request: Request, cfg: OidcSettings) -> AsyncIterator[httpx.AsyncClient]:
    shared: httpx.AsyncClient | None = getattr(request.app.state, "oidc_http", None)
    if shared is not None:
        yield shared
        return
    async with httpx.AsyncClient(timeout=cfg.timeout.total_seconds()) as client:
        yield client


def _configured(settings: Settings) -> OidcSettings:
    if settings.accounts.oidc is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no identity provider is configured")
    return settings.accounts.oidc


_ONWARD = (
    "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
    "<meta http-equiv='refresh' content='0;url=/ui'><title>Signed in · coldtrace</title></head>"
    "<body><p>Signed in. <a href='/ui'>Continue to the dashboard</a>.</p></body></html>"
)


async def _enabled_user(conn: AsyncConnection[TupleRow], name: str) -> int:
    cur = await conn.execute(
        "SELECT user_id FROM users WHERE name = %s AND disabled_at IS NULL"
        " AND (locked_until IS NULL OR locked_until <= now())",
        (name,),
    )
    row = await cur.fetchone()
    if row is None:
        raise SignInError(f"{name!r} has no enabled, unlocked account here")
    return int(row[0])


def add_oidc_routes(router: APIRouter) -> None:
    @router.get("/login/oidc")
    async def oidc_start(request: Request, pool: Pool, settings: Settings) -> Response:
        cfg = _configured(settings)
        try:
            async with _http(request, cfg) as http, pool.connection() as conn:
                url = await start(conn, http, cfg)
        except SignInError as err:
            return HTMLResponse(pages.login(str(err)), status_code=502)
        response = RedirectResponse(url, status_code=status.HTTP_303_SEE_OTHER)
        wcfg = web_settings(request)
        response.set_cookie(
            STATE_COOKIE, parse_qs(urlsplit(url).query)["state"][0], httponly=True,
            samesite="lax", path=STATE_PATH, max_age=int(PENDING.total_seconds()),
            secure=wcfg.secure_cookie or is_https(request, wcfg),
        )  # fmt: skip
        return response

    @router.get("/login/oidc/callback")
    async def oidc_callback(
        request: Request, pool: Pool, settings: Settings, code: Param, state: Param
    ) -> Response:
        cfg = _configured(settings)
        started = request.cookies.get(STATE_COOKIE, "")
        if not hmac.compare_digest(started.encode(), state.encode()):
            return HTMLResponse(pages.login(NOT_STARTED_HERE), status_code=401)
        try:
            async with _http(request, cfg) as http, pool.connection() as conn:
                name = await finish(conn, http, cfg, code=code, state=state)
                user_id = await _enabled_user(conn, name)
                async with conn.transaction():
                    session_id, _ = await open_person_session(
                        conn, user_id, policy(web_settings(request))
                    )
                    await audit(
                        conn, actor=name, action="account.sign_in", subject=f"user:{name}",
                        reason="dashboard sign-in", detail={"factors": "oidc"},
                    )  # fmt: skip
        except SignInError as err:
            return HTMLResponse(pages.login(str(err)), status_code=401)
        # The callback arrives from the provider's site, so a redirect from here would still be
        # a cross-site navigation that leaves the SameSite=Strict cookie behind: the page moves
        # on to /ui by itself, a same-site navigation that carries it.
        response = HTMLResponse(_ONWARD)
        response.delete_cookie(STATE_COOKIE, path=STATE_PATH, httponly=True, samesite="lax")
        wcfg = web_settings(request)
        response.set_cookie(
            COOKIE, session_id, httponly=True, samesite="strict", path="/ui",
            secure=wcfg.secure_cookie or is_https(request, wcfg),
        )  # fmt: skip
        return response
