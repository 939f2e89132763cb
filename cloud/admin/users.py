"""User administration the HTTP API and the admin pages share: a user's role."""

from __future__ import annotations

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from cloud.auth.model import Role


async def set_role(conn: AsyncConnection[TupleRow], name: str, role: Role) -> Role | None:
    """Gives ``name`` the role ``role``; returns the role it had (None: no such user).

    Open sessions and tokens follow at once: every request reads the role from ``users``.
    """
    cur = await conn.execute("SELECT role FROM users WHERE name = %s FOR UPDATE", (name,))
    row = await cur.fetchone()
    if row is None:
        return None
    await conn.execute("UPDATE users SET role = %s WHERE name = %s", (role.value, name))
    return Role(row[0])
