"""``/v1/users/{name}/…`` (admin) and ``/v1/me/…``: passwords, TOTP, lock-out, printed name.

The bearer token authenticates the request; changing one's own password or enrolling a second
factor also asks for the current password, so a stolen token alone cannot take the account.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Path, status
from psycopg import AsyncConnection
from psycopg.rows import TupleRow
from pydantic import BaseModel, Field

from cloud.accounts import AccountError, EnrolmentError, LockedError, SignInError, WeakPasswordError
from cloud.accounts.sessions import revoke_user_sessions
from cloud.accounts.store import (
    account_state,
    begin_totp,
    change_own_password,
    confirm_totp,
    remove_totp,
    set_full_name,
    set_password,
    unlock,
    verify_person,
)
from cloud.api.deps import Pool, Settings
from cloud.auth.deps import Admin, CurrentUser
from cloud.auth.service import audit

router = APIRouter(prefix="/v1", tags=["users"])

# as cloud.api.users (not imported: the ledger's routes import this module's helpers)
NamePath = Annotated[str, Path(max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$")]
Reason = Annotated[str | None, Header(alias="X-Coldtrace-Reason", max_length=500)]
Secret = Annotated[str, Field(min_length=1, max_length=1024)]
Code = Annotated[str, Field(min_length=6, max_length=8, pattern=r"^[0-9 ]+$")]
Conn = AsyncConnection[TupleRow]
PrintedName = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]


class PasswordIn(BaseModel):
    password: Secret


class OwnPasswordIn(BaseModel):
    current_password: Secret
    code: Code | None = None
    new_password: Secret


class ReauthIn(BaseModel):
    password: Secret
    code: Code | None = None


class CodeIn(BaseModel):
    code: Code


class FullNameIn(BaseModel):
    full_name: PrintedName


class AccountOut(BaseModel):
    name: str
    full_name: str | None
    """The printed name shown with the user's e-signatures."""
    has_password: bool
    totp_enrolled: bool
    locked_until: datetime | None


class EnrolmentOut(BaseModel):
    provisioning_uri: str
    """``otpauth://`` URI for an authenticator app; shown once, confirm with a code."""


def account_error(err: AccountError) -> HTTPException:
    """The HTTP answer to an accounts refusal (locked: 423 with the time; weak: 422)."""
    if isinstance(err, LockedError):
        return HTTPException(status.HTTP_423_LOCKED, str(err))
    if isinstance(err, SignInError):
        return HTTPException(status.HTTP_401_UNAUTHORIZED, str(err))
    if isinstance(err, WeakPasswordError | EnrolmentError):
        return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(err))
    return HTTPException(status.HTTP_403_FORBIDDEN, str(err))  # NoPasswordError


async def _state(pool: Pool, name: str) -> AccountOut:
    async with pool.connection() as conn:
        found = await account_state(conn, name)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no user {name!r}")
    return AccountOut(**vars(found))


async def _change_audited(
    pool: Pool, name: str, change: Callable[[Conn], Awaitable[bool]], *,
    actor: str, action: str, reason: str, detail: dict[str, Any] | None = None,
) -> AccountOut:  # fmt: skip
    """Applies an administrator's change to a user (404 if none) and audits it, in one go."""
    async with pool.connection() as conn, conn.transaction():
        if not await change(conn):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no user {name!r}")
        await audit(
            conn, actor=actor, action=action, subject=f"user:{name}", reason=reason, detail=detail
        )
    return await _state(pool, name)


@router.get("/users/{name}/account")
async def get_account(name: NamePath, pool: Pool, _: Admin) -> AccountOut:
    return await _state(pool, name)


@router.put("/users/{name}/password")
async def put_password(
    name: NamePath, body: PasswordIn, pool: Pool, settings: Settings, admin: Admin, *,
    reason: Reason = None,
) -> AccountOut:  # fmt: skip
    """Sets a user's password (an initial one, or a reset); their password sessions end."""
    try:
        async with pool.connection() as conn, conn.transaction():
            await set_password(conn, name, body.password, settings.accounts)
            await revoke_user_sessions(conn, name)
            await audit(
                conn, actor=admin.name, action="account.password_set", subject=f"user:{name}",
                reason=reason or "password set by an administrator",
            )  # fmt: skip
    except SignInError as err:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(err)) from err
    except AccountError as err:
        raise account_error(err) from err
    return await _state(pool, name)


@router.put("/users/{name}/full-name")
async def put_full_name(
    name: NamePath, body: FullNameIn, pool: Pool, admin: Admin, reason: Reason = None
) -> AccountOut:
    """The printed name that e-signatures carry (21 CFR 11.50(a)(1))."""
    return await _change_audited(
        pool, name, lambda conn: set_full_name(conn, name, body.full_name),
        actor=admin.name, action="account.full_name", reason=reason or "printed name set",
        detail={"full_name": body.full_name},
    )  # fmt: skip


@router.post("/users/{name}/unlock")
async def post_unlock(
    name: NamePath, pool: Pool, admin: Admin, reason: Reason = None
) -> AccountOut:
    return await _change_audited(
        pool, name, lambda conn: unlock(conn, name), actor=admin.name,
        action="account.unlock", reason=reason or "unlocked by an administrator",
    )  # fmt: skip


@router.delete("/users/{name}/totp")
async def delete_totp(
    name: NamePath, pool: Pool, admin: Admin, reason: Reason = None
) -> AccountOut:
    """Removes a user's second factor (a lost phone); they may enrol again."""
    return await _change_audited(
        pool, name, lambda conn: remove_totp(conn, name), actor=admin.name,
        action="account.totp_removed", reason=reason or "second factor removed by an administrator",
    )  # fmt: skip


@router.get("/me/account")
async def my_account(user: CurrentUser, pool: Pool) -> AccountOut:
    return await _state(pool, user.name)


@router.put("/me/password")
async def put_my_password(
    body: OwnPasswordIn, user: CurrentUser, pool: Pool, settings: Settings
) -> AccountOut:
    try:
        async with pool.connection() as conn:
            await change_own_password(
                conn, user.name, body.current_password, code=body.code, new=body.new_password,
                settings=settings.accounts,
            )  # fmt: skip
    except AccountError as err:
        raise account_error(err) from err
    return await _state(pool, user.name)


@router.post("/me/totp", status_code=status.HTTP_201_CREATED)
async def post_my_totp(
    body: ReauthIn, user: CurrentUser, pool: Pool, settings: Settings
) -> EnrolmentOut:
    """Starts a TOTP enrolment (re-enrolment replaces the factor once confirmed)."""
    try:
        async with pool.connection() as conn:
            await verify_person(
                conn, user.name, body.password, body.code, settings.accounts,
                purpose="totp enrolment",
            )  # fmt: skip
            async with conn.transaction():
                uri = await begin_totp(conn, user.name, settings.accounts)
    except AccountError as err:
        raise account_error(err) from err
    return EnrolmentOut(provisioning_uri=uri)


@router.post("/me/totp/confirm")
async def confirm_my_totp(body: CodeIn, user: CurrentUser, pool: Pool) -> AccountOut:
    try:
        async with pool.connection() as conn, conn.transaction():
            await confirm_totp(conn, user.name, body.code)
            await audit(
                conn, actor=user.name, action="account.totp_enrolled",
                subject=f"user:{user.name}", reason="second factor enrolled",
            )  # fmt: skip
    except AccountError as err:
        raise account_error(err) from err
    return await _state(pool, user.name)
