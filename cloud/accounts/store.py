"""People's credentials in the database: passwords, TOTP enrolment, sign-in with lock-out.

``verify_person`` runs its own short transaction, so a failed attempt is counted (and a lock-out
audited) even though the caller's action is then refused and rolled back: call it on a
connection that is not inside a transaction, before the action's own transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from cloud.accounts import (
    AccountError,
    EnrolmentError,
    LockedError,
    NoPasswordError,
    SignInError,
    WeakPasswordError,
    passwords,
    totp,
)
from cloud.accounts.sessions import revoke_user_sessions
from cloud.accounts.settings import AccountSettings
from cloud.auth.model import Role, User
from cloud.auth.service import audit

Factors = Literal["password", "password+totp"]
_REFUSED = "wrong user name, password or one-time code"


@dataclass(frozen=True)
class Person:
    """Who proved to be themselves just now, and with what."""

    user_id: int
    user: User
    printed_name: str
    factors: Factors


async def set_password(
    conn: AsyncConnection[TupleRow], name: str, password: str, settings: AccountSettings
) -> None:
    """Sets a user's password (rules checked) and clears any lock-out."""
    wrong = passwords.problems(password, username=name, min_length=settings.min_password_length)
    if wrong:
        raise WeakPasswordError("password " + "; ".join(wrong))
    cur = await conn.execute(
        "UPDATE users SET password_hash = %s, password_changed_at = now(), failed_attempts = 0,"
        " locked_until = NULL WHERE name = %s AND disabled_at IS NULL RETURNING user_id",
        (passwords.hash_password(password), name),
    )
    if await cur.fetchone() is None:
        raise SignInError(f"no enabled user {name!r}")


async def set_full_name(conn: AsyncConnection[TupleRow], name: str, full_name: str) -> bool:
    cur = await conn.execute(
        "UPDATE users SET full_name = %s WHERE name = %s RETURNING user_id", (full_name, name)
    )
    return await cur.fetchone() is not None


async def verify_person(
    conn: AsyncConnection[TupleRow],
    name: str,
    password: str,
    code: str | None,
    settings: AccountSettings,
    *,
    purpose: str,
) -> Person:
    """The person whose name, password and (when enrolled) current TOTP code these are.

    Every failure counts towards lock-out, whatever the purpose (sign-in or signature); after
    ``max_failures`` in a row the account is locked for ``lockout`` and that is audited.
    """
    if not name or any(c < " " or c == "\x7f" for c in name):
        raise SignInError(_REFUSED)  # no user has such a name (names are printable)
    async with conn.transaction():
        outcome = await _attempt(
            conn, name, password=password, code=code, settings=settings, purpose=purpose
        )
    if isinstance(outcome, AccountError):
        raise outcome
    return outcome


async def change_own_password(
    conn: AsyncConnection[TupleRow],
    name: str,
    current: str,
    *,
    code: str | None,
    new: str,
    settings: AccountSettings,
) -> None:
    """A user's own password change: the current password (and TOTP code) first, then the new
    password, the end of every password session of theirs, and the audit entry, together."""
    await verify_person(conn, name, current, code, settings, purpose="password change")
    async with conn.transaction():
        await set_password(conn, name, new, settings)
        await revoke_user_sessions(conn, name)
        await audit(
            conn, actor=name, action="account.password_changed", subject=f"user:{name}",
            reason="changed by the user",
        )  # fmt: skip


async def _attempt(
    conn: AsyncConnection[TupleRow],
    name: str,
    *,
    password: str,
    code: str | None,
    settings: AccountSettings,
    purpose: str,
) -> Person | AccountError:
    cur = await conn.execute(
        "SELECT user_id, role, coalesce(full_name, name), password_hash, totp_secret,"
        " totp_last_step, failed_attempts, locked_until, now() FROM users"
        " WHERE name = %s AND disabled_at IS NULL FOR UPDATE",
        (name,),
    )
    row = await cur.fetchone()
    if row is None:
        passwords.verify_password(passwords.DUMMY_HASH, password)  # same time as a real check
        await _audit(conn, name, "account.auth_failed", purpose, {"cause": "unknown user"})
        return SignInError(_REFUSED)
    user_id, role, printed, stored, secret, last_step, failures, locked_until, now = row
    if locked_until is not None and locked_until > now:
        await _audit(conn, name, "account.auth_refused_locked", purpose, {})
        return LockedError(locked_until)
    if stored is None:
        return NoPasswordError(f"user {name!r} has no password (an account for machines)")
    step: int | None = None
    ok = passwords.verify_password(str(stored), password)
    if ok and secret is not None:
        step = totp.matching_step(str(secret), code or "", at=now, last_step=last_step)
        ok = step is not None
    if not ok:
        return await _failed(conn, name, int(failures) + 1, settings, purpose)
    await conn.execute(
        "UPDATE users SET failed_attempts = 0, locked_until = NULL,"
        " totp_last_step = coalesce(%s, totp_last_step),"
        " password_hash = CASE WHEN %s THEN %s ELSE password_hash END WHERE user_id = %s",
        (step, passwords.needs_rehash(str(stored)), _rehash(str(stored), password), user_id),
    )
    factors: Factors = "password+totp" if secret is not None else "password"
    return Person(int(user_id), User(name=name, role=Role(role)), str(printed), factors)


def _rehash(stored: str, password: str) -> str | None:
    return passwords.hash_password(password) if passwords.needs_rehash(stored) else None


async def _failed(
    conn: AsyncConnection[TupleRow], name: str, failures: int, settings: AccountSettings,
    purpose: str,
) -> AccountError:  # fmt: skip
    if failures < settings.max_failures:
        await conn.execute(
            "UPDATE users SET failed_attempts = %s WHERE name = %s", (failures, name)
        )
        await _audit(conn, name, "account.auth_failed", purpose, {"failures": failures})
        return SignInError(_REFUSED)
    cur = await conn.execute(
        "UPDATE users SET failed_attempts = 0, locked_until = now() + %s WHERE name = %s"
        " RETURNING locked_until",
        (settings.lockout, name),
    )
    row = await cur.fetchone()
    assert row is not None
    until: datetime = row[0]
    await _audit(
        conn, name, "account.locked", purpose,
        {"failures": failures, "until": until.isoformat()},
    )  # fmt: skip
    return LockedError(until)


async def _audit(
    conn: AsyncConnection[TupleRow], name: str, action: str, purpose: str, detail: dict[str, object]
) -> None:
    await audit(
        conn, actor=name, action=action, subject=f"user:{name}", reason=purpose,
        detail={**detail, "purpose": purpose},
    )  # fmt: skip


async def unlock(conn: AsyncConnection[TupleRow], name: str) -> bool:
    cur = await conn.execute(
        "UPDATE users SET failed_attempts = 0, locked_until = NULL WHERE name = %s"
        " RETURNING user_id",
        (name,),
    )
    return await cur.fetchone() is not None


async def begin_totp(conn: AsyncConnection[TupleRow], name: str, settings: AccountSettings) -> str:
    """A new pending TOTP secret for the user; returns the provisioning URI (shown once)."""
    secret = totp.new_secret()
    cur = await conn.execute(
        "UPDATE users SET totp_pending = %s WHERE name = %s AND disabled_at IS NULL"
        " RETURNING user_id",
        (secret, name),
    )
    if await cur.fetchone() is None:
        raise EnrolmentError(f"no enabled user {name!r}")
    return totp.provisioning_uri(secret, username=name, issuer=settings.totp_issuer)


async def confirm_totp(conn: AsyncConnection[TupleRow], name: str, code: str) -> None:
    """Makes the pending secret the user's second factor once a code from it is right."""
    cur = await conn.execute(
        "SELECT totp_pending, now() FROM users WHERE name = %s FOR UPDATE", (name,)
    )
    row = await cur.fetchone()
    if row is None or row[0] is None:
        raise EnrolmentError("no TOTP enrolment is pending: start one first")
    step = totp.matching_step(str(row[0]), code, at=row[1], last_step=None)
    if step is None:
        raise EnrolmentError("the one-time code does not match: check the device's clock")
    await conn.execute(
        "UPDATE users SET totp_secret = totp_pending, totp_pending = NULL, totp_last_step = %s"
        " WHERE name = %s",
        (step, name),
    )


async def remove_totp(conn: AsyncConnection[TupleRow], name: str) -> bool:
    cur = await conn.execute(
        "UPDATE users SET totp_secret = NULL, totp_pending = NULL, totp_last_step = NULL"
        " WHERE name = %s RETURNING user_id",
        (name,),
    )
    return await cur.fetchone() is not None


@dataclass(frozen=True)
class AccountState:
    name: str
    full_name: str | None
    has_password: bool
    totp_enrolled: bool
    locked_until: datetime | None


async def account_state(conn: AsyncConnection[TupleRow], name: str) -> AccountState | None:
    cur = await conn.execute(
        "SELECT name, full_name, password_hash IS NOT NULL, totp_secret IS NOT NULL,"
        " CASE WHEN locked_until > now() THEN locked_until END FROM users WHERE name = %s",
        (name,),
    )
    row = await cur.fetchone()
    if row is None:
        return None
    return AccountState(str(row[0]), row[1], bool(row[2]), bool(row[3]), row[4])
