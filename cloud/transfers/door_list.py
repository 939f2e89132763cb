"""The door list a site's gateways may hold while it loads transfers (``protocols.door_list``).

Ordered: the GTINs of open transfer lines not yet fully shipped. Blocked: every tagged unit on
hand at the site (transit left out) that no open transfer may take: not usable, its lot
quarantined, rejected, recalled or expired, or short-dated under the strictest minimum shelf
life among the site's open transfers.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from cloud.transfers.picking import refusal
from cloud.transfers.store import allocate, open_transfers_from, shipped_lots, today
from protocols.door_list import DoorList


async def door_list(conn: AsyncConnection[TupleRow], site_id: str, now: datetime) -> DoorList:
    """The site's door list now (empty lists when it loads no transfer)."""
    transfers = await open_transfers_from(conn, site_id)
    ordered: set[str] = set()
    strictest = timedelta(0)
    for t in transfers:
        done = allocate(t.lines, await shipped_lots(conn, t.transfer_id))
        ordered |= {ln.gtin for ln in t.lines if done[ln.line_no] < ln.quantity}
        strictest = max(strictest, t.min_remaining)
    blocked: dict[str, str] = {}
    if transfers:
        cur = await conn.execute(
            "SELECT u.gs1_key, u.status, l.status, l.expiry FROM units u"
            " JOIN lots l USING (lot_id) JOIN locations loc ON loc.location_id = u.location_id"
            " WHERE loc.site_id = %s AND loc.kind <> 'transit' AND u.gs1_key IS NOT NULL"
            " AND u.unit_kind = 'sgtin' ORDER BY u.gs1_key",
            (site_id,),
        )
        for key, status, lot_status, expiry in await cur.fetchall():
            why = refusal(
                status=str(status), lot_status=str(lot_status), expiry=expiry,
                on=today(now), min_remaining=strictest,
            )  # fmt: skip
            if why is not None:
                blocked[str(key)] = why
    return DoorList(
        site_id=site_id, generated_at=now, ordered_gtins=sorted(ordered), blocked=blocked
    )
