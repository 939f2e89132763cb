"""Alarm actions: the escalation state and delivery log of alerts (viewers), acknowledging with
a comment (operators, QA), the one-time acknowledgement link of a message (the link is the
credential), suppression windows (QA plans and cancels, everyone sees), and closing an ended
excursion with root cause and corrective action (QA)."""

from __future__ import annotations

import html
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Form, HTTPException, Query, status
from fastapi.responses import HTMLResponse
from psycopg import AsyncConnection
from psycopg.rows import TupleRow
from pydantic import BaseModel, ConfigDict, Field

from cloud.accounts.settings import AccountSettings
from cloud.alarms import ActionRefusedError, NotFoundError
from cloud.alarms.actions import (
    Closure,
    CorrectiveAction,
    RootCause,
    Window,
    acknowledge_alert,
    acknowledge_by_link,
    cancel_window,
    check_closure,
    close_excursion,
    get_closure,
    link_target,
    list_windows,
    plan_window,
)
from cloud.api.deps import IdPath, IdQuery, Pool, Settings
from cloud.api.ledger import IdPath as RowId
from cloud.api.signatures import SignatureIn, SignatureOut, reauthenticate, shown
from cloud.auth.deps import Qa, Viewer, require_role
from cloud.auth.model import Role, User
from cloud.signatures.core import SignedAction
from cloud.signatures.store import sign
from protocols.records import UtcDatetime

router = APIRouter(tags=["alarms"])

Responder = Annotated[User, require_role(Role.OPERATOR, Role.QA)]
"""Who answers alarms: operators and QA (and admins)."""

Comment = Annotated[str | None, Field(max_length=1000)]


@asynccontextmanager
async def _room(pool: Pool) -> AsyncIterator[AsyncConnection[TupleRow]]:
    try:
        async with pool.connection() as conn, conn.transaction():
            yield conn
    except NotFoundError as err:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(err)) from err
    except ActionRefusedError as err:
        raise HTTPException(status.HTTP_409_CONFLICT, str(err)) from err


class AcknowledgeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    comment: Comment = None


class AcknowledgedOut(BaseModel):
    acknowledged: list[int]


class AttemptOut(BaseModel):
    attempt: int
    at: datetime
    outcome: Literal["sent", "failed", "given_up"]
    error: str | None


class DeliveryOut(BaseModel):
    delivery_id: int
    channel: str
    contact: str | None
    step: int
    round: int
    status: Literal["pending", "sent", "failed"]
    attempts: int
    sent_at: datetime | None
    last_error: str | None
    created_at: datetime
    log: list[AttemptOut]
    """Every attempt: sent, failed (retried), given up, with the error."""


class AlarmOut(BaseModel):
    alert_id: int
    kind: str
    severity: str
    message: str
    site_id: str | None
    policy: str | None
    route: str | None
    step: int
    round: int
    next_at: datetime | None
    held: str | None
    finished_at: datetime | None
    finish_reason: str | None
    problems: str | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    ack_note: str | None
    deliveries: list[DeliveryOut]


_ALARM_SQL = """
SELECT al.alert_id, al.kind, al.severity, al.message, a.site_id, a.policy, a.route, a.step,
       a.round, a.next_at, a.held, a.finished_at, a.finish_reason, a.problems,
       al.acknowledged_at, al.acknowledged_by, al.ack_note,
       coalesce((SELECT json_agg(json_build_object(
           'delivery_id', d.delivery_id, 'channel', c.name, 'contact', d.contact,
           'step', d.step, 'round', d.round, 'status', d.status, 'attempts', d.attempts,
           'sent_at', d.sent_at, 'last_error', d.last_error, 'created_at', d.created_at,
           'log', coalesce((SELECT json_agg(json_build_object('attempt', t.attempt, 'at', t.at,
               'outcome', t.outcome, 'error', t.error) ORDER BY t.attempt)
             FROM alarm_delivery_attempts t WHERE t.delivery_id = d.delivery_id), '[]'))
           ORDER BY d.delivery_id)
         FROM alarm_deliveries d JOIN alarm_channels c USING (channel_id)
         WHERE d.alert_id = al.alert_id), '[]')
FROM alarms a JOIN alerts al USING (alert_id)
"""
_ALARM_FIELDS = list(AlarmOut.model_fields)


@router.get("/v1/alarms")
async def get_alarms(
    pool: Pool,
    _: Viewer,
    site_id: IdQuery = None,
    active: bool = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AlarmOut]:
    """Alarms newest first with their escalation state and every delivery; ``active=true``:
    still escalating or held."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            _ALARM_SQL + " WHERE (%s::text IS NULL OR a.site_id = %s) AND (NOT %s OR"
            " a.finished_at IS NULL) ORDER BY al.alert_id DESC LIMIT %s",
            (site_id, site_id, active, limit),
        )
        rows = await cur.fetchall()
    return [AlarmOut(**dict(zip(_ALARM_FIELDS, r, strict=True))) for r in rows]


@router.get("/v1/alarms/{alert_id}")
async def get_alarm(alert_id: RowId, pool: Pool, _: Viewer) -> AlarmOut:
    async with pool.connection() as conn:
        cur = await conn.execute(_ALARM_SQL + " WHERE al.alert_id = %s", (alert_id,))
        row = await cur.fetchone()
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no alarm {alert_id}")
    return AlarmOut(**dict(zip(_ALARM_FIELDS, row, strict=True)))


@router.post("/v1/alarms/{alert_id}/acknowledge")
async def post_acknowledge(
    alert_id: RowId, body: AcknowledgeIn, pool: Pool, user: Responder
) -> AcknowledgedOut:
    """Acknowledges the alarm (and the earlier ones of its excursion): escalation stops."""
    async with _room(pool) as conn:
        done = await acknowledge_alert(
            conn, alert_id, actor=user.name, comment=body.comment, via="api"
        )
    return AcknowledgedOut(acknowledged=done)


# The one-time link ---------------------------------------------------------------------------

_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="referrer" content="no-referrer"><title>coldtrace alarm</title></head>
<body style="font-family:sans-serif;max-width:40rem;margin:2rem auto">{content}</body></html>"""


def _page(content: str, code: int = 200) -> HTMLResponse:
    return HTMLResponse(
        _PAGE.format(content=content),
        status_code=code,
        headers={"Cache-Control": "no-store", "X-Robots-Tag": "noindex"},
    )


@router.get("/alarms/ack/{token}", response_class=HTMLResponse, include_in_schema=False)
async def ack_link_page(token: str, pool: Pool, settings: Settings) -> HTMLResponse:
    """Shows the alarm and a form; nothing changes on GET (mail scanners open links)."""
    try:
        async with _room(pool) as conn:
            target = await link_target(conn, token, datetime.now(UTC), settings.alarms.ack_link_ttl)
    except HTTPException as err:
        return _page(f"<p>{html.escape(str(err.detail))}</p>", err.status_code)
    return _page(
        f"<h1>Acknowledge alarm #{target.alert_id}</h1><p>{html.escape(target.message)}</p>"
        '<form method="post"><label>Comment (optional)<br>'
        '<textarea name="comment" maxlength="1000" rows="4" cols="50"></textarea></label><br>'
        '<button type="submit">Acknowledge</button></form>'
    )


@router.post("/alarms/ack/{token}", response_class=HTMLResponse, include_in_schema=False)
async def ack_link(
    token: str,
    pool: Pool,
    settings: Settings,
    comment: Annotated[str | None, Form(max_length=1000)] = None,
) -> HTMLResponse:
    """Acknowledges as the contact the message was sent to; the link then stops working."""
    try:
        async with _room(pool) as conn:
            target, done = await acknowledge_by_link(
                conn, token, comment=(comment or "").strip() or None, now=datetime.now(UTC),
                ttl=settings.alarms.ack_link_ttl,
            )  # fmt: skip
    except HTTPException as err:
        return _page(f"<p>{html.escape(str(err.detail))}</p>", err.status_code)
    return _page(
        f"<h1>Acknowledged</h1><p>Alarm #{target.alert_id} is acknowledged"
        f"{' (with ' + str(len(done) - 1) + ' earlier)' if len(done) > 1 else ''}."
        " Escalation has stopped.</p>"
    )


# Suppression windows -------------------------------------------------------------------------


class WindowIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["maintenance", "defrost", "other"]
    starts_at: UtcDatetime
    ends_at: UtcDatetime
    reason: Annotated[str, Field(min_length=1, max_length=500)]


class WindowOut(BaseModel):
    window_id: int
    location_id: str
    kind: str
    starts_at: datetime
    ends_at: datetime
    reason: str
    created_by: str
    created_at: datetime
    cancelled_at: datetime | None
    cancelled_by: str | None


class CancelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Comment = None


def _window(w: Window) -> WindowOut:
    return WindowOut(**w.__dict__)


@router.post("/v1/locations/{location_id}/suppressions", status_code=status.HTTP_201_CREATED)
async def post_window(location_id: IdPath, body: WindowIn, pool: Pool, user: Qa) -> WindowOut:
    """Plans a maintenance or defrost window: the unit's alarms wait until it ends (an
    excursion still open then alarms at once); readings are still stored and judged."""
    async with _room(pool) as conn:
        window = await plan_window(
            conn, location_id, kind=body.kind, starts_at=body.starts_at, ends_at=body.ends_at,
            reason=body.reason, actor=user.name, now=datetime.now(UTC),
        )  # fmt: skip
    return _window(window)


@router.get("/v1/suppressions")
async def get_windows(
    pool: Pool,
    _: Viewer,
    location_id: IdQuery = None,
    active: bool = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[WindowOut]:
    async with pool.connection() as conn:
        windows = await list_windows(
            conn, location_id=location_id, active_at=datetime.now(UTC) if active else None,
            limit=limit,
        )  # fmt: skip
    return [_window(w) for w in windows]


@router.post("/v1/suppressions/{window_id}/cancel")
async def post_cancel(window_id: RowId, body: CancelIn, pool: Pool, user: Qa) -> WindowOut:
    async with _room(pool) as conn:
        window = await cancel_window(conn, window_id, actor=user.name, reason=body.reason)
    return _window(window)


# Closing an excursion ------------------------------------------------------------------------


class ClosureIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    root_cause: RootCause
    root_cause_detail: Comment = None
    corrective_action: CorrectiveAction | None = None
    corrective_action_detail: Comment = None
    comment: Comment = None
    signature: SignatureIn | None = None
    """Required to close an action-level excursion (QA's password and code typed again,
    meaning reviewed or approved); accepted on an alert-level one."""


class ClosureOut(BaseModel):
    excursion_id: int
    root_cause: str
    root_cause_detail: str | None
    corrective_action: str | None
    corrective_action_detail: str | None
    comment: str | None
    closed_by: str
    closed_at: datetime
    signatures: list[SignatureOut] = []


def _closure(c: Closure, signatures: list[SignatureOut]) -> ClosureOut:
    return ClosureOut(**c.__dict__, signatures=signatures)


@router.post("/v1/excursions/{excursion_id}/closure", status_code=status.HTTP_201_CREATED)
async def post_closure(
    excursion_id: RowId, body: ClosureIn, pool: Pool, settings: Settings, user: Qa
) -> ClosureOut:
    """Closes an ended excursion with its root cause and corrective action (required at action
    level), recorded with who and when, and in the audit trail; an action-level excursion is
    closed with an e-signature."""
    return await close_signed(pool, excursion_id, body, user, settings.accounts)


async def close_signed(
    pool: Pool, excursion_id: int, body: ClosureIn, user: User, accounts: AccountSettings
) -> ClosureOut:
    """The one closing path, for the REST route and the dashboard's form: the closing rules are
    checked, then the signer is re-authenticated, then the closure and its signature are stored
    in one transaction (where ``close_excursion`` checks the rules again, under lock).
    HTTP errors: 404 no excursion, 422 an action-level one without a signature, 409 still open,
    closed already, or a missing corrective action or description, 401/403/423 the signature
    refused (``reauthenticate``)."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT x.level, x.ended_at IS NOT NULL, c.excursion_id IS NOT NULL FROM excursions x"
            " LEFT JOIN excursion_closures c USING (excursion_id) WHERE x.excursion_id = %s",
            (excursion_id,),
        )
        row = await cur.fetchone()
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no excursion {excursion_id}")
    if row[0] == "action" and body.signature is None:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            "closing an action-level excursion needs an e-signature (signature)",
        )
    # Refused before the password and code are checked: a refusal then uses up neither the
    # signer's one-time code (a code signs once) nor a sign-in attempt.
    try:
        check_closure(
            excursion_id, str(row[0]), ended=bool(row[1]), closed=bool(row[2]),
            root_cause=body.root_cause, root_cause_detail=body.root_cause_detail,
            corrective_action=body.corrective_action,
            corrective_action_detail=body.corrective_action_detail,
        )  # fmt: skip
    except ActionRefusedError as err:
        raise HTTPException(status.HTTP_409_CONFLICT, str(err)) from err
    action = SignedAction.EXCURSION_CLOSE
    person = (
        await reauthenticate(pool, user, body.signature, accounts, action)
        if body.signature is not None
        else None
    )
    async with _room(pool) as conn:
        closure = await close_excursion(
            conn, excursion_id, root_cause=body.root_cause,
            root_cause_detail=body.root_cause_detail, corrective_action=body.corrective_action,
            corrective_action_detail=body.corrective_action_detail, comment=body.comment,
            actor=user.name,
        )  # fmt: skip
        if person is not None and body.signature is not None:
            content = {**closure.__dict__, "level": row[0], "closed_at": closure.closed_at}
            await sign(
                conn, person, action=action, subject=f"excursion:{excursion_id}",
                meaning=body.signature.meaning, entries_after=None, content=content,
            )  # fmt: skip
        signatures = await shown(conn, f"excursion:{excursion_id}")
    return _closure(closure, signatures)


@router.get("/v1/excursions/{excursion_id}/closure")
async def get_closure_route(excursion_id: RowId, pool: Pool, _: Viewer) -> ClosureOut:
    async with pool.connection() as conn:
        closure = await get_closure(conn, excursion_id)
        signatures = await shown(conn, f"excursion:{excursion_id}")
    if closure is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"excursion {excursion_id} is not closed")
    return _closure(closure, signatures)
