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
            reason=reason or "gateway registered",
            detail={"site_id": site_id, "before": None,
                    "after": {"gateway_id": gateway_id, "site_id": site_id, "disabled": False}},
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
            # the token itself is never written down; only that it changed
            detail={"before": {"token": "previous"}, "after": {"token": "replaced"}},
        )  # fmt: skip
    return token


async def move_gateway(
    conn: AsyncConnection[TupleRow], gateway_id: str, site_id: str, *, actor: str,
    reason: str | None,
) -> str | None:  # fmt: skip
    """Registers a gateway to ``site_id`` (the site it writes for); returns the site it had.

    ``LookupError`` when there is no such gateway; a missing site is a ForeignKeyViolation.
    From the next batch on, ingest judges its records against the new site
    (``cloud.ingest.scope``); what it sent before stays as it was judged.
    """
    async with conn.transaction():
        cur = await conn.execute(
            "SELECT site_id FROM gateways WHERE gateway_id = %s FOR UPDATE", (gateway_id,)
        )
        row = await cur.fetchone()
        if row is None:
            raise LookupError(f"no gateway {gateway_id!r}")
        await conn.execute(
            "UPDATE gateways SET site_id = %s WHERE gateway_id = %s", (site_id, gateway_id)
        )
        await audit(
            conn, actor=actor, action="gateway.site", subject=f"gateway:{gateway_id}",
            reason=reason or "gateway registered to a site",
            detail={"site_id": site_id, "previous_site_id": row[0],
                    "before": {"site_id": row[0]}, "after": {"site_id": site_id}},
        )  # fmt: skip
    return None if row[0] is None else str(row[0])


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
            detail={"before": {"disabled": False}, "after": {"disabled": True}},
        )  # fmt: skip
    return True
