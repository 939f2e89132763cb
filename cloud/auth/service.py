"""Users, tokens and the audit trail in the database (inside the caller's transaction)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import TupleRow
from psycopg.types.json import Jsonb

from cloud.auth import UnauthenticatedError, UserExistsError
from cloud.auth.model import Role, User, hash_token, new_token


async def add_user(
    conn: AsyncConnection[TupleRow], name: str, role: Role, *, expires_at: datetime | None = None
) -> str:
    """Creates a user with one API token and returns the token (it is not kept).

    ``expires_at``: when the token stops working (None: until revoked).
    """
    token = new_token()
    try:
        cur = await conn.execute(
            "INSERT INTO users (name, role) VALUES (%s, %s) RETURNING user_id", (name, role.value)
        )
    except psycopg.errors.UniqueViolation as err:
        raise UserExistsError(f"user {name!r} already exists") from err
    row = await cur.fetchone()
    assert row is not None
    await conn.execute(
        "INSERT INTO api_tokens (user_id, token_hash, expires_at) VALUES (%s, %s, %s)",
        (row[0], hash_token(token), expires_at),
    )
    return token


async def issue_token(
    conn: AsyncConnection[TupleRow], name: str, *, expires_at: datetime | None = None
) -> str:
    """A further token for an existing, enabled user."""
    token = new_token()
    cur = await conn.execute(
        "INSERT INTO api_tokens (user_id, token_hash, expires_at) SELECT user_id, %s, %s"
        " FROM users WHERE name = %s AND disabled_at IS NULL RETURNING token_id",
        (hash_token(token), expires_at, name),
    )
    if await cur.fetchone() is None:
        raise UnauthenticatedError(f"no enabled user {name!r}")
    return token


LIVE_ACCESS = (
    "t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > now())"
    " AND u.disabled_at IS NULL"
)
"""SQL condition on ``api_tokens t JOIN users u``: the token works now."""


async def token_owner(conn: AsyncConnection[TupleRow], token: str) -> tuple[User, int]:
    """The user a live token belongs to, and the token's id; else ``UnauthenticatedError``."""
    cur = await conn.execute(
        "SELECT u.name, u.role, t.token_id FROM api_tokens t JOIN users u USING (user_id)"
        " WHERE t.token_hash = %s AND " + LIVE_ACCESS,
        (hash_token(token),),
    )
    row = await cur.fetchone()
    if row is None:
        raise UnauthenticatedError("unknown, expired or revoked token")
    return User(name=str(row[0]), role=Role(row[1])), int(row[2])


async def authenticate(conn: AsyncConnection[TupleRow], token: str) -> User:
    return (await token_owner(conn, token))[0]


async def list_users(conn: AsyncConnection[TupleRow]) -> list[tuple[str, Role, bool]]:
    cur = await conn.execute("SELECT name, role, disabled_at IS NULL FROM users ORDER BY name")
    return [(str(n), Role(r), bool(e)) for n, r, e in await cur.fetchall()]


async def disable_user(conn: AsyncConnection[TupleRow], name: str) -> bool:
    cur = await conn.execute(
        "UPDATE users SET disabled_at = now() WHERE name = %s AND disabled_at IS NULL"
        " RETURNING user_id",
        (name,),
    )
    return await cur.fetchone() is not None


async def audit(
    conn: AsyncConnection[TupleRow],
    *,
    actor: str,
    action: str,
    subject: str,
    reason: str | None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Records a write: who did what to which subject, and why."""
    await conn.execute(
        "INSERT INTO audit_log (actor, action, subject, reason, detail)"
        " VALUES (%s, %s, %s, %s, %s)",
        (actor, action, subject, reason, Jsonb(detail or {})),
    )
