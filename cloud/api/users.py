"""``/v1/users`` and ``/v1/audit`` (admin), ``/v1/me``: users, roles, tokens, audit trail.

Every change is audited (``user.add``, ``user.role`` with the role before and after,
``user.disable``, ``token.issue``) with the reason from ``X-Coldtrace-Reason``.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, Response, status
from pydantic import BaseModel, Field

from cloud.admin.users import set_role
from cloud.api.deps import Pool
from cloud.api.ledger import LABEL, IdQuery, LabelQuery
from cloud.audit import printout, trail
from cloud.audit.trail import AuditFilter
from cloud.auth import UnauthenticatedError, UserExistsError
from cloud.auth.deps import Admin, CurrentUser, require_role
from cloud.auth.model import Role, User
from cloud.auth.service import add_user, audit, disable_user, issue_token, list_users
from cloud.ledger.instant import Instant
from cloud.reports import ReportError
from protocols.records import UtcDatetime

router = APIRouter(prefix="/v1", tags=["users"])

Reason = Annotated[str | None, Header(alias="X-Coldtrace-Reason", max_length=500)]


class AuditOut(BaseModel):
    audit_id: int
    at: datetime
    actor: str
    action: str
    subject: str
    reason: str | None
    detail: dict[str, Any]


class UserIn(BaseModel):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")]
    role: Role
    token_expires_at: Instant | None = None
    """When the user's first API token stops working; None: until revoked."""


class TokenIn(BaseModel):
    expires_at: Instant | None = None
    """When the token stops working; None: until revoked."""


class TokenOut(BaseModel):
    name: str
    token: str
    """Shown once: only its hash is kept."""
    expires_at: datetime | None


class UserOut(BaseModel):
    name: str
    role: Role
    enabled: bool = True


class NewUserOut(UserOut):
    token: str
    """Shown once: only its hash is kept."""


@router.get("/me")
async def me(user: CurrentUser) -> UserOut:
    return UserOut(name=user.name, role=user.role)


@router.post("/users", status_code=status.HTTP_201_CREATED)
async def create_user(body: UserIn, pool: Pool, admin: Admin, reason: Reason = None) -> NewUserOut:
    expires = _future(body.token_expires_at)
    try:
        async with pool.connection() as conn, conn.transaction():
            token = await add_user(conn, body.name, body.role, expires_at=expires)
            await audit(
                conn, actor=admin.name, action="user.add", subject=f"user:{body.name}",
                reason=reason or "user created",
                detail={"role": body.role.value, "token_expires_at": _iso(expires)},
            )  # fmt: skip
    except UserExistsError as err:
        raise HTTPException(status.HTTP_409_CONFLICT, str(err)) from err
    return NewUserOut(name=body.name, role=body.role, token=token)


@router.post("/users/{name}/tokens", status_code=status.HTTP_201_CREATED)
async def new_token(
    name: Annotated[str, Path(max_length=64, pattern=LABEL)],
    body: TokenIn,
    pool: Pool,
    admin: Admin,
    reason: Reason = None,
) -> TokenOut:
    """A further API token for an enabled user, optionally expiring (rotation: issue a new
    one, then revoke the old by disabling and re-adding, or let it expire)."""
    expires = _future(body.expires_at)
    async with pool.connection() as conn, conn.transaction():
        try:
            token = await issue_token(conn, name, expires_at=expires)
        except UnauthenticatedError as err:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no enabled user {name!r}") from err
        await audit(
            conn, actor=admin.name, action="token.issue", subject=f"user:{name}",
            reason=reason or "token issued", detail={"expires_at": _iso(expires)},
        )  # fmt: skip
    return TokenOut(name=name, token=token, expires_at=expires)


def _future(at: datetime | None) -> datetime | None:
    if at is not None and at <= datetime.now(UTC):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "expiry must be in the future")
    return at


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()


@router.get("/users")
async def users(pool: Pool, _: Admin) -> list[UserOut]:
    async with pool.connection() as conn:
        return [UserOut(name=n, role=r, enabled=e) for n, r, e in await list_users(conn)]


@router.post("/users/{name}/disable")
async def disable(
    name: Annotated[str, Path(max_length=64, pattern=LABEL)],
    pool: Pool,
    admin: Admin,
    reason: Reason = None,
) -> UserOut:
    async with pool.connection() as conn, conn.transaction():
        if not await disable_user(conn, name):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no enabled user {name!r}")
        await audit(
            conn, actor=admin.name, action="user.disable", subject=f"user:{name}",
            reason=reason or "user disabled",
        )  # fmt: skip
        found = {n: (r, e) for n, r, e in await list_users(conn)}
    role, enabled = found[name]
    return UserOut(name=name, role=role, enabled=enabled)


class RoleIn(BaseModel):
    role: Role


@router.put("/users/{name}/role")
async def put_role(
    name: Annotated[str, Path(max_length=64, pattern=LABEL)],
    body: RoleIn,
    pool: Pool,
    admin: Admin,
    reason: Reason = None,
) -> UserOut:
    """Changes a user's role; it applies to their open sessions and tokens at once."""
    async with pool.connection() as conn, conn.transaction():
        before = await set_role(conn, name, body.role)
        if before is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no user {name!r}")
        await audit(
            conn, actor=admin.name, action="user.role", subject=f"user:{name}",
            reason=reason or "role changed",
            detail={"before": {"role": before.value}, "after": {"role": body.role.value}},
        )  # fmt: skip
        found = {n: (r, e) for n, r, e in await list_users(conn)}
    role, enabled = found[name]
    return UserOut(name=name, role=role, enabled=enabled)


Auditor = Annotated[User, require_role(Role.QA)]
"""Who reads the audit trail: QA (review, Annex 11 §9) and admins."""


def _filter(
    *,
    actor: LabelQuery = None,
    action: LabelQuery = None,
    subject: LabelQuery = None,
    since: UtcDatetime | None = None,
    until: UtcDatetime | None = None,
    before: IdQuery = None,
) -> AuditFilter:
    """Who (actor), what (action), which object (subject), when (since inclusive, until
    exclusive); a value ending in ``*`` matches by prefix (``account.*``, ``lot:*``)."""
    if since is not None and until is not None and until <= since:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "until must be after since")
    return AuditFilter(actor, action, subject, since, until, before)


Filter = Annotated[AuditFilter, Depends(_filter)]


@router.get("/audit")
async def audit_trail(
    pool: Pool,
    _: Auditor,
    f: Filter,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AuditOut]:
    """Who wrote what and why, newest first (page with ``before`` = the last ``audit_id``)."""
    async with pool.connection() as conn:
        return [AuditOut(**vars(r)) for r in await trail.entries(conn, f, limit=limit)]


@router.get("/audit.csv")
async def audit_csv(pool: Pool, _: Auditor, f: Filter) -> Response:
    """The matching entries as CSV (at most ``MAX_EXPORT`` rows, newest first)."""
    return await csv_download(pool, f)


@router.get("/audit.pdf")
async def audit_pdf(pool: Pool, user: Auditor, f: Filter) -> Response:
    """The matching entries as a PDF (the newest ``MAX_PDF_ROWS``; CSV for more)."""
    return await pdf_download(pool, f, user.name)


async def csv_download(pool: Pool, f: AuditFilter) -> Response:
    """The entries matching ``f`` as a CSV attachment (at most ``MAX_EXPORT``, newest first)."""
    async with pool.connection() as conn:
        rows = await trail.entries(conn, f, limit=trail.MAX_EXPORT)
    return Response(
        trail.as_csv(rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="audit-trail.csv"'},
    )


async def pdf_download(pool: Pool, f: AuditFilter, printed_by: str) -> Response:
    """The entries matching ``f`` as a PDF attachment (one more than fits, to say so)."""
    async with pool.connection() as conn:
        rows = await trail.entries(conn, f, limit=printout.MAX_PDF_ROWS + 1)
    return await pdf_response(rows, f, printed_by)


async def pdf_response(rows: list[trail.AuditRow], f: AuditFilter, printed_by: str) -> Response:
    """Prints off the event loop (WeasyPrint is CPU-bound); 503 when Pango is missing."""
    try:
        pdf = await asyncio.to_thread(
            printout.audit_pdf, rows, f, printed_by=printed_by, at=datetime.now(UTC)
        )
    except ReportError as err:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(err)) from err
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": 'attachment; filename="audit-trail.pdf"'},
    )
