"""A gateway's name for people, changed with an audit entry in the same transaction.

The id stays the gateway's identity (its token, its batches, its records); the name is what the
dashboard and ``GET /v1/gateways`` show people ("Back office gateway" rather than ``gw-7f3a``).
"""

from __future__ import annotations

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from cloud.auth.service import audit

MAX_NAME = 200


def clean_name(name: str) -> str:
    """The name as stored: trimmed, refused when empty or too long.

    >>> clean_name("  Back office gateway ")
    'Back office gateway'
    """
    cleaned = " ".join(name.split())
    if not cleaned or len(cleaned) > MAX_NAME:
        raise ValueError(f"a gateway name has 1 to {MAX_NAME} characters")
    return cleaned


async def name_gateway(
    conn: AsyncConnection[TupleRow], gateway_id: str, name: str, *, actor: str,
    reason: str | None,
) -> str | None:  # fmt: skip
    """Gives ``gateway_id`` the name ``name``; returns the name it had. ``LookupError`` when
    there is no such gateway, ``ValueError`` for an empty or too long name."""
    cleaned = clean_name(name)
    async with conn.transaction():
        cur = await conn.execute(
            "SELECT name FROM gateways WHERE gateway_id = %s FOR UPDATE", (gateway_id,)
        )
        row = await cur.fetchone()
        if row is None:
            raise LookupError(f"no gateway {gateway_id!r}")
        await conn.execute(
            "UPDATE gateways SET name = %s WHERE gateway_id = %s", (cleaned, gateway_id)
        )
        await audit(
            conn, actor=actor, action="gateway.name", subject=f"gateway:{gateway_id}",
            reason=reason or "gateway named",
            detail={"before": {"name": row[0]}, "after": {"name": cleaned}},
        )  # fmt: skip
    return None if row[0] is None else str(row[0])
