"""``/ui``: the dashboard's pages, its event stream, its actions and its static files.

Thin: each handler reads through ``queries``/``kpis``, renders through ``pages``, and acts
through the same service functions the REST API uses (``cloud.coldchain.alerts.acknowledge``,
``cloud.ledger.service.dispose_lot``, ``cloud.api.alarm_actions.close_signed``), in one
transaction each.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from importlib import resources
from typing import Annotated, Literal

from fastapi import APIRouter, Form, HTTPException, Query, Request, Response, status
from fastapi.responses import HTMLResponse, RedirectResponse, StreamingResponse
from psycopg import AsyncConnection
from psycopg.rows import TupleRow
from pydantic import BaseModel, Field

from cloud.accounts import AccountError, LockedError, NoPasswordError
from cloud.accounts.sessions import open_person_session, open_session, revoke_session
from cloud.accounts.store import Person, verify_person
from cloud.api.alarm_actions import ClosureIn, ClosureOut, close_signed
from cloud.api.deps import Pool, Settings
from cloud.api.ledger import DbId, IdPath, http_error
from cloud.api.signatures import SignatureIn, reauthenticate
from cloud.auth import UnauthenticatedError
from cloud.auth.service import audit, token_owner
from cloud.coldchain import TraceTooLongError
from cloud.coldchain.alerts import acknowledge
from cloud.coldchain.exposure import LotExposure, lot_exposure
from cloud.ledger import LedgerError
from cloud.ledger.release_guard import (
    confirm_needed,
    open_excursions_affecting,
    record_confirmed_release,
)
from cloud.ledger.service import dispose_lot
from cloud.signatures.core import STATEMENT, SignedAction
from cloud.signatures.store import ledger_mark, sign, signatures_for
from cloud.web import alarms_panel, kpis, pages, queries
from cloud.web.account_page import add_account_routes
from cloud.web.audit_page import add_audit_routes
from cloud.web.closures import unit_excursions
from cloud.web.config import WebSettings
from cloud.web.dispositions import last_disposition
from cloud.web.gateways_panel import gateway_rows, gateways_section
from cloud.web.history import MAX_SPAN, History, as_csv, as_json, history, unit_info
from cloud.web.lot_page import lot_page
from cloud.web.oidc_routes import add_oidc_routes
from cloud.web.permissions import Can
from cloud.web.session import (
    COOKIE,
    MaybeUser,
    QualityAction,
    ResponderAction,
    SessionUser,
    is_https,
    policy,
    remember_settings,
)
from cloud.web.unit_page import unit_page
from protocols.records import UtcDatetime

_STATIC = {
    "app.js": "text/javascript",
    "app.css": "text/css",
    "charts.js": "text/javascript",
    "charts.css": "text/css",
}
_VENDOR = {
    # served unmodified from the npm package (make web-deps), with its licence
    "uPlot.iife.min.js": ("dist/uPlot.iife.min.js", "text/javascript"),
    "uPlot.min.css": ("dist/uPlot.min.css", "text/css"),
    "uPlot-LICENSE.txt": ("LICENSE", "text/plain"),
}


class AcknowledgeIn(BaseModel):
    alert_ids: Annotated[list[DbId], Field(min_length=1, max_length=100)]
    note: Annotated[str, Field(max_length=500)] | None = None


class DispositionIn(BaseModel):
    decision: Literal["release", "reject"]
    reason: Annotated[str, Field(min_length=1, max_length=500)]
    confirm_open_excursion: bool = False
    """Release although an excursion affecting the lot is still open (recorded in the audit)."""
    signature: SignatureIn
    """The QA user's name and password (and code) typed again, and the meaning."""


async def render_sections(
    conn: AsyncConnection[TupleRow], settings: WebSettings, can: Can | None = None
) -> dict[str, str]:
    """Every overview section as HTML, from one consistent ``now``, with the buttons ``can``
    allows (none: a viewer's)."""
    can = can or Can()
    now = await queries.database_now(conn)
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    units = await queries.units(
        conn, now=now, window=settings.trend_window, bucket=settings.trend_bucket,
        default_silence=settings.default_silence,
    )  # fmt: skip
    excursions = await queries.open_excursions(conn)
    alerts = await queries.waiting_alerts(conn)
    figures = await kpis.kpis(conn, now=now, period=settings.kpi_period)
    return {
        "units": pages.units_section(units),
        "excursions": pages.excursions_section(excursions, alerts, can=can, now=now, units=units),
        "alarms": await alarms_panel.render(conn, now, can),
        "gateways": gateways_section(await gateway_rows(conn)),
        "quarantine": pages.quarantine_section(await queries.quarantined_lots(conn), can=can),
        "receiving": pages.receiving_section(await queries.receipts_since(conn, today)),
        "kpis": pages.kpis_section(figures, settings.kpi_period),
    }


def _refusal(err: AccountError) -> int:
    if isinstance(err, LockedError):
        return status.HTTP_423_LOCKED
    return status.HTTP_403_FORBIDDEN if isinstance(err, NoPasswordError) else 401


def _login_redirect() -> RedirectResponse:
    return RedirectResponse("/ui/login", status_code=status.HTTP_303_SEE_OTHER)


def build_router(settings: WebSettings | None = None) -> APIRouter:
    """The dashboard's routes; ``settings`` default to the ``COLDTRACE_WEB_*`` environment."""
    cfg = settings or WebSettings()
    router = APIRouter(
        prefix="/ui",
        tags=["dashboard"],
        include_in_schema=False,
        dependencies=[remember_settings(cfg)],
    )

    @router.get("", response_class=HTMLResponse)
    async def overview(pool: Pool, user: MaybeUser) -> Response:
        if user is None:
            return _login_redirect()
        async with pool.connection() as conn:
            sections = await render_sections(conn, cfg, Can.of(user))
        return HTMLResponse(pages.overview(sections, user=f"{user.name} ({user.role.value})"))

    @router.get("/lots/{lot_id}", response_class=HTMLResponse)
    async def lot(lot_id: IdPath, pool: Pool, user: MaybeUser) -> Response:
        if user is None:
            return _login_redirect()
        async with pool.connection() as conn:
            now = await queries.database_now(conn)
            try:
                found = await lot_exposure(conn, lot_id, now=now, bucket=cfg.exposure_bucket)
            except TraceTooLongError as err:
                raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(err)) from err
            cur = await conn.execute(
                "SELECT p.name FROM lots l JOIN products p USING (gtin) WHERE l.lot_id = %s",
                (lot_id,),
            )
            row = await cur.fetchone()
            if found is None or row is None:
                raise HTTPException(status.HTTP_404_NOT_FOUND, f"no lot {lot_id}")
            places, zone = await _places(conn, found)
            still_open = await open_excursions_affecting(conn, lot_id)
            decided = await last_disposition(conn, lot_id)
            signed = await signatures_for(conn, [f"lot:{lot_id}"])
        page = lot_page(
            found, product=str(row[0]), user=user.name, places=places, timezone=zone,
            can=Can.of(user), still_open=still_open, decided=decided, signatures=signed,
        )  # fmt: skip
        return HTMLResponse(page)

    @router.get("/units/{location_id:path}", response_class=HTMLResponse)
    async def unit(location_id: str, pool: Pool, user: MaybeUser) -> Response:
        if user is None:
            return _login_redirect()
        async with pool.connection() as conn:
            found = await unit_info(conn, location_id, default_silence=cfg.default_silence)
            excursions = await unit_excursions(conn, location_id) if found else []
        if found is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no storage unit {location_id!r}")
        return HTMLResponse(
            unit_page(found, user=user.name, excursions=excursions, can=Can.of(user))
        )

    @router.get("/history")
    async def history_json(
        location: HistoryLocation, start: HistoryStart, end: HistoryEnd, pool: Pool, _: SessionUser
    ) -> dict[str, object]:
        return as_json(await _history(pool, cfg, location, start, end))

    @router.get("/history.csv")
    async def history_csv(
        location: HistoryLocation, start: HistoryStart, end: HistoryEnd, pool: Pool, _: SessionUser
    ) -> Response:
        found = await _history(pool, cfg, location, start, end)
        name = re.sub(r"[^A-Za-z0-9._-]", "_", location)
        stamp = f"{start:%Y%m%dT%H%M}-{end:%Y%m%dT%H%M}"
        return Response(
            as_csv(found),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}-{stamp}.csv"'},
        )

    @router.get("/events")
    async def events(request: Request, pool: Pool, user: SessionUser) -> StreamingResponse:
        return StreamingResponse(
            event_stream(pool, cfg, request.is_disconnected, Can.of(user)),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    @router.post("/alerts/acknowledge")
    async def ack(body: AcknowledgeIn, pool: Pool, actor: ResponderAction) -> dict[str, int]:
        async with pool.connection() as conn, conn.transaction():
            done = 0
            for alert_id in body.alert_ids:
                row = await acknowledge(conn, alert_id, user=actor.name, note=body.note)
                if row is None:
                    raise HTTPException(status.HTTP_404_NOT_FOUND, f"no alert {alert_id}")
                done += 1
        return {"acknowledged": done}

    @router.post("/lots/{lot_id}/disposition")
    async def disposition(
        lot_id: IdPath, body: DispositionIn, pool: Pool, settings: Settings, actor: QualityAction
    ) -> dict[str, str]:
        action = SignedAction(f"lot.disposition/{body.decision}")
        person = await reauthenticate(pool, actor, body.signature, settings.accounts, action)
        signature = await _dispose(pool, lot_id, body, person)
        return {"lot_id": str(lot_id), "decision": body.decision, "signature": signature}

    _add_closure_route(router)
    _add_session_routes(router, cfg)
    return router


def _add_closure_route(router: APIRouter) -> None:
    @router.post("/excursions/{excursion_id}/closure")
    async def closure(
        excursion_id: IdPath, body: ClosureIn, pool: Pool, settings: Settings, actor: QualityAction
    ) -> ClosureOut:
        """The unit page's close form: the REST route's own closing path, signed in person."""
        return await close_signed(pool, excursion_id, body, actor, settings.accounts)


async def _dispose(pool: Pool, lot_id: int, body: DispositionIn, person: Person) -> str:
    """The e-signed disposition; a release past an open excursion affecting the lot only with
    the confirmation (409 without), which is recorded in the same transaction. Returns the
    signature's manifestation."""
    actor = person.user.name
    try:
        async with pool.connection() as conn, conn.transaction():
            still_open = (
                await open_excursions_affecting(conn, lot_id) if body.decision == "release" else []
            )
            if still_open and not body.confirm_open_excursion:
                raise HTTPException(status.HTTP_409_CONFLICT, confirm_needed(still_open))
            mark = await ledger_mark(conn)
            at = datetime.now(UTC)
            await dispose_lot(
                conn, lot_id=lot_id, decision=body.decision, actor=actor, reason=body.reason,
                effective_at=at, signature_meaning=STATEMENT[body.signature.meaning],
            )  # fmt: skip
            if still_open:
                await record_confirmed_release(
                    conn, actor=actor, lot_id=lot_id, reason=body.reason, excursions=still_open
                )
            signature = await sign(
                conn, person, action=SignedAction(f"lot.disposition/{body.decision}"),
                subject=f"lot:{lot_id}", meaning=body.signature.meaning, entries_after=mark,
                content={"lot_id": lot_id, "decision": body.decision, "reason": body.reason,
                         "effective_at": at.isoformat()},
            )  # fmt: skip
    except LedgerError as err:
        raise http_error(err) from err
    return signature.manifestation()


def _add_session_routes(router: APIRouter, cfg: WebSettings) -> None:
    add_audit_routes(router)  # pages of their own rooms, under the same session rules
    add_account_routes(router)
    add_oidc_routes(router)

    @router.get("/login", response_class=HTMLResponse)
    async def login_page(settings: Settings) -> HTMLResponse:
        oidc = settings.accounts.oidc
        return HTMLResponse(pages.login(provider=None if oidc is None else oidc.label))

    @router.post("/login", response_class=HTMLResponse)
    async def login(
        request: Request,
        pool: Pool,
        settings: Settings,
        *,
        token: Annotated[str | None, Form(max_length=200)] = None,
        username: Annotated[str | None, Form(max_length=64)] = None,
        password: Annotated[str | None, Form(max_length=1024)] = None,
        code: Annotated[str | None, Form(max_length=8)] = None,
    ) -> Response:
        """Opens a session for a person (user name, password, code when enrolled) or, for
        service accounts, an API token; the cookie carries the session id only."""
        async with pool.connection() as conn:
            if token is not None:
                try:
                    _, token_id = await token_owner(conn, token.strip())
                except UnauthenticatedError:
                    return HTMLResponse(
                        pages.login("Unknown, expired or revoked token."), status_code=401
                    )
                session_id, _ = await open_session(conn, token_id, policy(cfg))
            elif not username or password is None:
                return HTMLResponse(
                    pages.login("Give your user name and password."), status_code=422
                )
            else:
                try:
                    person = await verify_person(
                        conn, username.strip(), password, code,
                        settings.accounts, purpose="dashboard sign-in",
                    )  # fmt: skip
                except AccountError as err:
                    return HTMLResponse(pages.login(str(err)), status_code=_refusal(err))
                async with conn.transaction():
                    session_id, _ = await open_person_session(conn, person.user_id, policy(cfg))
                    await audit(
                        conn, actor=person.user.name, action="account.sign_in",
                        subject=f"user:{person.user.name}", reason="dashboard sign-in",
                        detail={"factors": person.factors},
                    )  # fmt: skip
            # a new id at every sign-in; the one this browser had before stops working
            if previous := request.cookies.get(COOKIE, "").strip():
                await revoke_session(conn, previous)
        response = RedirectResponse("/ui", status_code=status.HTTP_303_SEE_OTHER)
        response.set_cookie(
            COOKIE, session_id, httponly=True, samesite="strict", path="/ui",
            secure=cfg.secure_cookie or is_https(request, cfg),
        )  # fmt: skip
        return response

    @router.post("/logout")
    async def logout(request: Request, pool: Pool) -> RedirectResponse:
        """Revokes the session (the cookie alone is not trusted to be forgotten)."""
        session_id = request.cookies.get(COOKIE, "").strip()
        if session_id:
            async with pool.connection() as conn:
                await revoke_session(conn, session_id)
        response = _login_redirect()
        response.delete_cookie(COOKIE, path="/ui", httponly=True, samesite="strict")
        return response

    @router.get("/vendor/{name}")
    async def vendor(name: str) -> Response:
        if name not in _VENDOR:
            raise HTTPException(status.HTTP_404_NOT_FOUND)
        path, media_type = _VENDOR[name]
        modules = cfg.vendor_dir or resources.files("cloud.web").joinpath("vendor", "node_modules")
        try:
            text = modules.joinpath("uplot", *path.split("/")).read_text("utf-8")
        except FileNotFoundError as err:
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE, "chart library not installed: make web-deps"
            ) from err
        return Response(text, media_type=media_type, headers={"Cache-Control": "max-age=86400"})

    @router.get("/static/{name}")
    async def static(name: str) -> Response:
        if name not in _STATIC:
            raise HTTPException(status.HTTP_404_NOT_FOUND)
        text = resources.files("cloud.web").joinpath("static", name).read_text("utf-8")
        return Response(text, media_type=_STATIC[name], headers={"Cache-Control": "max-age=3600"})


async def _places(
    conn: AsyncConnection[TupleRow], found: LotExposure
) -> tuple[dict[str, str], str]:
    """Names of the places a lot stayed, and the time zone of the last one's site."""
    cur = await conn.execute(
        "SELECT l.location_id, l.name, s.timezone FROM locations l JOIN sites s USING (site_id)"
        " WHERE l.location_id = ANY(%s)",
        ([st.location_id for st in found.stays],),
    )
    rows = {str(r[0]): (str(r[1]), str(r[2])) for r in await cur.fetchall()}
    last = found.stays[-1].location_id if found.stays else ""
    zone = rows[last][1] if last in rows else "UTC"
    return {k: name for k, (name, _) in rows.items()}, zone


HistoryLocation = Annotated[str, Query(min_length=1, max_length=200)]
HistoryStart = Annotated[UtcDatetime, Query(description="inclusive, RFC 3339 with offset")]
HistoryEnd = Annotated[UtcDatetime, Query(description="exclusive, RFC 3339 with offset")]


async def _history(
    pool: Pool, cfg: WebSettings, location: str, start: datetime, end: datetime
) -> History:
    if end <= start:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "end must be after start")
    if end - start > MAX_SPAN:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, f"at most {MAX_SPAN.days} days at a time"
        )
    async with pool.connection() as conn:
        found = await unit_info(conn, location, default_silence=cfg.default_silence)
        if found is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no storage unit {location!r}")
        return await history(conn, found, start=start, end=end)


def _alive(cfg: WebSettings) -> str:
    """A heartbeat the page can see (a comment it could not): the server's time, and within how
    many seconds the next event comes, so a silently dead connection is noticed and shown."""
    within = cfg.keepalive.total_seconds() + cfg.poll_interval.total_seconds()
    data = {"at": datetime.now(UTC).isoformat(), "within_s": within}
    return f"event: alive\ndata: {json.dumps(data)}\n\n"


async def event_stream(
    pool: Pool,
    cfg: WebSettings,
    disconnected: Callable[[], Awaitable[bool]],
    can: Can | None = None,
) -> AsyncIterator[str]:
    """Server-sent events: all sections whenever their data changed; an "alive" event when idle.

    Each poll borrows a pooled connection for a few milliseconds instead of holding one for
    the life of the stream, so open dashboards never starve the API of connections. The stream
    ends after ``stream_lifetime`` and the browser reconnects (the first event of a new stream
    carries every section, so nothing is missed in between).
    """
    last: tuple[object, ...] | None = None
    idle_since = time.monotonic()
    ends = idle_since + cfg.stream_lifetime.total_seconds()
    yield "retry: 1000\n\n"
    while time.monotonic() < ends and not await disconnected():
        async with pool.connection() as conn:
            mark = await queries.fingerprint(conn)
            sections = await render_sections(conn, cfg, can or Can()) if mark != last else None
        if sections is not None:
            last = mark
            idle_since = time.monotonic()
            yield f"event: sections\ndata: {json.dumps(sections)}\n\n"
        elif time.monotonic() - idle_since >= cfg.keepalive.total_seconds():
            idle_since = time.monotonic()
            yield _alive(cfg)
        await asyncio.sleep(cfg.poll_interval.total_seconds())
