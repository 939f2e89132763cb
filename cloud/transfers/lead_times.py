"""Replenishment lead times set per site and product, and those measured from transfers.

The figures take each product's lead time ``L`` from, in order: the request; a lead time set
here for the site and product; the mean order-to-receipt time of the transfers of that product
this site received; the same over all products; a default of 7 days.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

DEFAULT_LEAD_TIME_DAYS = 7.0


@dataclass(frozen=True)
class LeadTime:
    site_id: str
    gtin: str
    lead_time: timedelta
    set_by: str
    set_at: datetime


async def set_lead_time(
    conn: AsyncConnection[TupleRow], site: str, gtin: str, lead_time: timedelta, *, by: str
) -> LeadTime | None:
    """Sets (or replaces) the lead time; returns the one it replaced, if any."""
    old = await lead_times(conn, site, gtin)
    await conn.execute(
        "INSERT INTO replenishment_lead_times (site_id, gtin, lead_time, set_by)"
        " VALUES (%s, %s, %s, %s) ON CONFLICT (site_id, gtin) DO UPDATE SET"
        " lead_time = excluded.lead_time, set_by = excluded.set_by, set_at = now()",
        (site, gtin, lead_time, by),
    )
    return old[0] if old else None


async def clear_lead_time(conn: AsyncConnection[TupleRow], site: str, gtin: str) -> LeadTime | None:
    """Removes the set lead time (the product falls back to measured or default)."""
    old = await lead_times(conn, site, gtin)
    await conn.execute(
        "DELETE FROM replenishment_lead_times WHERE site_id = %s AND gtin = %s", (site, gtin)
    )
    return old[0] if old else None


async def lead_times(
    conn: AsyncConnection[TupleRow], site: str, gtin: str | None = None
) -> list[LeadTime]:
    """The lead times set for ``site`` (one product's, when ``gtin`` is given)."""
    cur = await conn.execute(
        "SELECT site_id, gtin, lead_time, set_by, set_at FROM replenishment_lead_times"
        " WHERE site_id = %s AND (%s::text IS NULL OR gtin = %s) ORDER BY gtin",
        (site, gtin, gtin),
    )
    return [LeadTime(str(s), str(g), lt, str(b), at) for s, g, lt, b, at in await cur.fetchall()]


async def measured_by_product(conn: AsyncConnection[TupleRow], site: str) -> dict[str, float]:
    """Mean days from order to receipt of the received transfers to ``site``, per product
    (a transfer counts once per product however many lines it has of it)."""
    cur = await conn.execute(
        "SELECT gtin, avg(extract(epoch FROM received_at - created_at)) / 86400 FROM"
        " (SELECT DISTINCT t.transfer_id, l.gtin, t.created_at, t.received_at FROM transfers t"
        "  JOIN transfer_lines l USING (transfer_id)"
        "  WHERE t.to_site = %s AND t.received_at IS NOT NULL) x GROUP BY gtin",
        (site,),
    )
    return {str(g): float(d) for g, d in await cur.fetchall() if d is not None}
