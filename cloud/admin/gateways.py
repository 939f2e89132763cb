"""Gateway administration, each change written to the audit trail in the same transaction.

A gateway token lets a machine write readings that can quarantine stock, so who registered a
gateway, who replaced its token and who switched it off are recorded like any other admin write
(``audit_log``, subject ``gateway:<id>``). A disabled gateway's batches answer 401 at once
(``cloud.ingest.auth.authenticate``); what it already sent stays, and is still processed.
"""

from __future__ import annotations

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from cloud.auth.service import audit
from cloud.ingest.auth import add_gateway


async def register_gateway(
    conn: AsyncConnection[TupleRow], gateway_id: str, site_id: str | None, *, actor: str,
    reason: str | None,
) -> str:  # fmt: skip
    """Registers a gateway and returns its token (shown once)."""
    async with conn.transaction():
        token = await add_gateway(conn, gateway_id, site_id)
        await audit(
            conn, actor=actor, action="gateway.add", subject=f"gateway:{gateway_id}",
            reason=reason or "gateway registered", detail={"site_id": site_id},
        )  # fmt: skip
    return token


async def rotate_gateway(
    conn: AsyncConnection[TupleRow], gateway_id: str, *, actor: str, reason: str | None
) -> str:
    """Replaces a gateway's token (the old one stops working at commit); returns the new one."""
    async with conn.transaction():
        token = await add_gateway(conn, gateway_id, None, rotate=True)
        await audit(
            conn, actor=actor, action="gateway.rotate", subject=f"gateway:{gateway_id}",
            reason=reason or "token rotated",
        )  # fmt: skip
    return token


async def disable_gateway(
    conn: AsyncConnection[TupleRow], gateway_id: str, *, actor: str, reason: str | None
) -> bool:
    """Switches a gateway off; False when there is no enabled gateway of that id."""
    async with conn.transaction():
        cur = await conn.execute(
            "UPDATE gateways SET disabled_at = now()"
            " WHERE gateway_id = %s AND disabled_at IS NULL RETURNING gateway_id",
            (gateway_id,),
        )
        if await cur.fetchone() is None:
            return False
        await audit(
            conn, actor=actor, action="gateway.disable", subject=f"gateway:{gateway_id}",
            reason=reason or "gateway disabled",
        )  # fmt: skip
    return True
