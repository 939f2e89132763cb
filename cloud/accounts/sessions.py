"""Server-side dashboard sessions (inside the caller's transaction or autocommit).

The cookie carries 256 random bits; the table keeps only their sha256, like API tokens. A
session works while all of these hold: not revoked (sign-out), younger than its absolute
lifetime, used within the idle timeout, and the API token it was opened with is itself live
(not revoked, not expired, its user not disabled), so every existing way of cutting a user off
also ends their dashboard sessions at once.

>>> len(new_session_id()) >= 43
True
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

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
    await conn.execute(
        "DELETE FROM ui_sessions WHERE expires_at < now() - interval '1 day'"
        " OR revoked_at < now() - interval '1 day'"
    )
    session_id = new_session_id()
    cur = await conn.execute(
        "INSERT INTO ui_sessions (session_hash, token_id, expires_at)"
        " VALUES (%s, %s, now() + %s) RETURNING expires_at",
        (_digest(session_id), token_id, policy.lifetime),
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
        "SELECT u.name, u.role FROM ui_sessions s JOIN api_tokens t USING (token_id)"
        " JOIN users u USING (user_id)"
        " WHERE s.session_hash = %s AND s.revoked_at IS NULL AND s.expires_at > now()"
        " AND s.last_seen_at > now() - %s AND " + LIVE_ACCESS,
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
