"""Server-side dashboard sessions (inside the caller's transaction or autocommit).

The cookie carries 256 random bits; the table keeps only their sha256, like API tokens. A
session works while all of these hold: not revoked (sign-out), younger than its absolute
lifetime, used within the idle timeout, and its user is not disabled. A session is opened either
with an API token (then the token must itself stay live: not revoked, not expired) or with the
person's password (``cloud.accounts.store.verify_person``), so every existing way of cutting a
user off also ends their dashboard sessions at once.

>>> len(new_session_id()) >= 43
True
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from cloud.auth.model import Role, User
from cloud.auth.service import LIVE_ACCESS


@dataclass(frozen=True)
class SessionPolicy:
    idle_timeout: timedelta
    """A session unused this long ends (event-stream polls do not count as use)."""
    lifetime: timedelta
    """A session ends this long after sign-in, however busy."""


def new_session_id() -> str:
    return secrets.token_urlsafe(32)


def _digest(session_id: str) -> bytes:
    return hashlib.sha256(session_id.encode("utf-8")).digest()


async def open_session(
    conn: AsyncConnection[TupleRow], token_id: int, policy: SessionPolicy
) -> tuple[str, datetime]:
    """A new session for the user of ``token_id``: the cookie value and when it ends at latest.

    Sessions that ended over a day ago are deleted on the way, so the table stays small.
    """
    return await _open(conn, "token_id", token_id, policy)


async def open_person_session(
    conn: AsyncConnection[TupleRow], user_id: int, policy: SessionPolicy
) -> tuple[str, datetime]:
    """A new session for a person who just gave their password (and code)."""
    return await _open(conn, "user_id", user_id, policy)


async def _open(
    conn: AsyncConnection[TupleRow],
    owner: Literal["token_id", "user_id"],
    owner_id: int,
    policy: SessionPolicy,
) -> tuple[str, datetime]:
    await conn.execute(
        "DELETE FROM ui_sessions WHERE expires_at < now() - interval '1 day'"
        " OR revoked_at < now() - interval '1 day'"
    )
    session_id = new_session_id()
    cur = await conn.execute(
        f"INSERT INTO ui_sessions (session_hash, {owner}, expires_at)"
        " VALUES (%s, %s, now() + %s) RETURNING expires_at",
        (_digest(session_id), owner_id, policy.lifetime),
    )
    row = await cur.fetchone()
    assert row is not None
    return session_id, row[0]


async def session_user(
    conn: AsyncConnection[TupleRow], session_id: str, policy: SessionPolicy, *, touch: bool
) -> User | None:
    """The user of a working session, or None. ``touch`` counts this request as activity."""
    if not session_id or len(session_id) > 100:
        return None
    cur = await conn.execute(
        "SELECT u.name, u.role FROM ui_sessions s"
        " LEFT JOIN api_tokens t ON t.token_id = s.token_id"
        " JOIN users u ON u.user_id = coalesce(s.user_id, t.user_id)"
        " WHERE s.session_hash = %s AND s.revoked_at IS NULL AND s.expires_at > now()"
        " AND s.last_seen_at > now() - %s"
        " AND (s.token_id IS NULL AND u.disabled_at IS NULL OR " + LIVE_ACCESS + ")",
        (_digest(session_id), policy.idle_timeout),
    )
    row = await cur.fetchone()
    if row is None:
        return None
    if touch:
        await conn.execute(
            "UPDATE ui_sessions SET last_seen_at = now() WHERE session_hash = %s",
            (_digest(session_id),),
        )
    return User(name=str(row[0]), role=Role(row[1]))


async def revoke_session(conn: AsyncConnection[TupleRow], session_id: str) -> bool:
    """Ends a session (sign-out); True when there was a live one."""
    cur = await conn.execute(
        "UPDATE ui_sessions SET revoked_at = now()"
        " WHERE session_hash = %s AND revoked_at IS NULL RETURNING token_id",
        (_digest(session_id),),
    )
    return await cur.fetchone() is not None


async def revoke_user_sessions(conn: AsyncConnection[TupleRow], name: str) -> int:
    """Ends every password session of a user (after a password change or reset)."""
    cur = await conn.execute(
        "UPDATE ui_sessions SET revoked_at = now() WHERE revoked_at IS NULL"
        " AND user_id = (SELECT user_id FROM users WHERE name = %s)",
        (name,),
    )
    return cur.rowcount
