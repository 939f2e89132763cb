"""``/ui/account``: a signed-in person changes their password and enrols a TOTP second factor.

Plain HTML forms (no script). Each change asks for the current password again, so a forged
cross-site form (which the SameSite=Strict cookie already stops) would still be refused, and a
session left open cannot be turned into someone else's account. The provisioning URI is shown
once, on the answer to the enrolment form; the factor counts only once a code from it is typed.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Response, status
from fastapi.responses import HTMLResponse, RedirectResponse

from cloud.accounts import AccountError, LockedError
from cloud.accounts.store import (
    AccountState,
    account_state,
    begin_totp,
    change_own_password,
    confirm_totp,
    verify_person,
)
from cloud.api.deps import Pool, Settings
from cloud.auth.service import audit
from cloud.web.pages import e, frame
from cloud.web.session import MaybeUser, SessionUser

Secret = Annotated[str, Form(max_length=1024)]
Code = Annotated[str | None, Form(max_length=8)]


def _password_form() -> str:
    return (
        "<form method='post' action='/ui/account/password' class='account'>"
        "<h3>Change password</h3>"
        "<label>Current password <input type='password' name='current' required"
        " autocomplete='current-password'></label>"
        "<label>One-time code (if enrolled) <input name='code' inputmode='numeric'"
        " autocomplete='one-time-code' maxlength='8'></label>"
        "<label>New password (12 characters at least; a passphrase is fine)"
        " <input type='password' name='new' required minlength='12'"
        " autocomplete='new-password'></label><button>Change password</button></form>"
    )


def _totp_form(enrolled: bool) -> str:
    what = "Replace the second factor" if enrolled else "Add a second factor (authenticator app)"
    return (
        f"<form method='post' action='/ui/account/totp' class='account'><h3>{what}</h3>"
        "<label>Password <input type='password' name='password' required"
        " autocomplete='current-password'></label>"
        "<label>Current code (if enrolled) <input name='code' inputmode='numeric'"
        " maxlength='8'></label><button>Start</button></form>"
    )


def account_page(state: AccountState, *, user: str, message: str | None = None) -> str:
    note = f"<p class='notice' role='status'>{e(message)}</p>" if message else ""
    if not state.has_password:
        inner = (
            "<p>This account has no password (an account for machines, signed in with an API"
            " token). Ask an administrator to set one; only then can it sign records.</p>"
        )
    else:
        inner = _password_form() + _totp_form(state.totp_enrolled)
    factor = "enrolled" if state.totp_enrolled else "not enrolled"
    body = (
        f"<section><h2>Your account</h2>{note}<p>Signed in as <b>{e(state.name)}</b>; printed"
        f" name on your signatures: <b>{e(state.full_name or state.name)}</b>; second factor:"
        f" {factor}.</p>{inner}</section>"
    )
    return frame("Your account", body, user=user)


def enrolment_page(uri: str, *, user: str) -> str:
    body = (
        "<section><h2>Add the second factor</h2>"
        "<p>Add this account to your authenticator app (paste the link, or type the secret"
        " from it). It is shown <b>this once</b>.</p>"
        f"<p><code class='otpauth'>{e(uri)}</code></p>"
        "<form method='post' action='/ui/account/totp/confirm' class='account'>"
        "<label>Code from the app <input name='code' required inputmode='numeric'"
        " autocomplete='one-time-code' maxlength='8'></label><button>Confirm</button></form>"
        "</section>"
    )
    return frame("Second factor", body, user=user)


def _login() -> RedirectResponse:
    return RedirectResponse("/ui/login", status_code=status.HTTP_303_SEE_OTHER)


def _status(err: AccountError) -> int:
    return status.HTTP_423_LOCKED if isinstance(err, LockedError) else 400


def add_account_routes(router: APIRouter) -> None:
    async def show(pool: Pool, name: str, message: str | None = None, code: int = 200) -> Response:
        async with pool.connection() as conn:
            state = await account_state(conn, name)
        if state is None:
            return _login()
        return HTMLResponse(account_page(state, user=name, message=message), status_code=code)

    @router.get("/account", response_class=HTMLResponse)
    async def account(pool: Pool, user: MaybeUser) -> Response:
        if user is None:
            return _login()
        return await show(pool, user.name)

    @router.post("/account/password", response_class=HTMLResponse)
    async def change_password(
        pool: Pool, settings: Settings, user: SessionUser, *, current: Secret, new: Secret,
        code: Code = None,
    ) -> Response:  # fmt: skip
        try:
            async with pool.connection() as conn:
                await change_own_password(
                    conn, user.name, current, code=code, new=new, settings=settings.accounts
                )
        except AccountError as err:
            return await show(pool, user.name, str(err), _status(err))
        return _login()  # the password's sessions ended: sign in with the new one

    @router.post("/account/totp", response_class=HTMLResponse)
    async def start_totp(
        pool: Pool, settings: Settings, user: SessionUser, password: Secret, code: Code = None
    ) -> Response:
        try:
            async with pool.connection() as conn:
                await verify_person(conn, user.name, password, code, settings.accounts,
                                    purpose="totp enrolment")  # fmt: skip
                async with conn.transaction():
                    uri = await begin_totp(conn, user.name, settings.accounts)
        except AccountError as err:
            return await show(pool, user.name, str(err), _status(err))
        return HTMLResponse(
            enrolment_page(uri, user=user.name), headers={"Cache-Control": "no-store"}
        )

    @router.post("/account/totp/confirm", response_class=HTMLResponse)
    async def confirm(
        pool: Pool, user: SessionUser, code: Annotated[str, Form(max_length=8)]
    ) -> Response:
        try:
            async with pool.connection() as conn, conn.transaction():
                await confirm_totp(conn, user.name, code)
                await audit(
                    conn, actor=user.name, action="account.totp_enrolled",
                    subject=f"user:{user.name}", reason="second factor enrolled",
                )  # fmt: skip
        except AccountError as err:
            return await show(pool, user.name, str(err), _status(err))
        return await show(
            pool, user.name, "Second factor enrolled: sign-ins and signatures now ask for a code."
        )
