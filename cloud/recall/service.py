"""Recall queries and the recall hold, inside the caller's transaction.

Every query is keyed by lot (indexes on ``balances(lot_id)``, ``units(lot_id, …)`` and
``ledger_entries(lot_id, entry_id)``), so the answer does not grow with the size of the ledger.
The lot's temperature exposure comes from the cold-chain part
(``cloud.coldchain.exposure.lot_exposure``) when it is installed; the excursions that overlapped
the lot's stays are listed in any case.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from cloud.ledger.core import Draft, Movement, Place, Status
from cloud.ledger.service import lot_stays, post
from cloud.ledger.store import lock_head
from cloud.recall import LotNotFoundError


@dataclass(frozen=True)
class Lot:
    lot_id: int
    gtin: str
    lot_number: str
    expiry: date | None
    status: str
    product: str


async def find_lot(conn: AsyncConnection[TupleRow], gtin: str, lot_number: str) -> Lot:
    cur = await conn.execute(
        "SELECT l.lot_id, l.gtin, l.lot_number, l.expiry, l.status, p.name FROM lots l"
        " JOIN products p USING (gtin) WHERE l.gtin = %s AND l.lot_number = %s",
        (gtin, lot_number),
    )
    row = await cur.fetchone()
    if row is None:
        raise LotNotFoundError(f"no lot {lot_number!r} of GTIN {gtin}")
    return Lot(int(row[0]), str(row[1]), str(row[2]), row[3], str(row[4]), str(row[5]))


async def _rows(
    conn: AsyncConnection[TupleRow], sql: str, params: tuple[Any, ...], names: list[str]
) -> list[dict[str, Any]]:
    cur = await conn.execute(sql, params)
    return [dict(zip(names, row, strict=True)) for row in await cur.fetchall()]


async def on_hand(conn: AsyncConnection[TupleRow], lot_id: int) -> list[dict[str, Any]]:
    return await _rows(
        conn,
        "SELECT b.location_id, l.kind, l.site_id, b.status, b.quantity FROM balances b"
        " JOIN locations l USING (location_id) WHERE b.lot_id = %s AND b.quantity > 0"
        " ORDER BY b.location_id, b.status",
        (lot_id,),
        ["location_id", "location_kind", "site_id", "status", "quantity"],
    )


async def units(conn: AsyncConnection[TupleRow], lot_id: int) -> list[dict[str, Any]]:
    return await _rows(
        conn,
        "SELECT epc_uri, parent_uri, location_id, status FROM units WHERE lot_id = %s"
        " ORDER BY epc_uri",
        (lot_id,),
        ["epc_uri", "parent_uri", "location_id", "status"],
    )


async def containers(conn: AsyncConnection[TupleRow], lot_id: int) -> list[dict[str, Any]]:
    """Every logistic unit holding a unit of the lot, nested ones included (walking up).

    ``content_locations`` are where its direct contents are now, as the ledger says: a case
    whose units were put away is no longer where it was received.
    """
    return await _rows(
        conn,
        "WITH RECURSIVE up AS ("
        " SELECT DISTINCT parent_uri AS epc_uri FROM units"
        "  WHERE lot_id = %s AND parent_uri IS NOT NULL"
        " UNION SELECT u.parent_uri FROM units u JOIN up ON u.epc_uri = up.epc_uri"
        "  WHERE u.parent_uri IS NOT NULL)"
        " SELECT u.epc_uri, u.parent_uri, u.location_id,"
        "  ARRAY(SELECT DISTINCT c.location_id FROM units c WHERE c.parent_uri = u.epc_uri"
        "   AND c.location_id IS NOT NULL ORDER BY 1)"
        " FROM up JOIN units u USING (epc_uri) ORDER BY u.epc_uri",
        (lot_id,),
        ["epc_uri", "parent_uri", "location_id", "content_locations"],
    )


async def issued(conn: AsyncConnection[TupleRow], lot_id: int) -> list[dict[str, Any]]:
    return await _rows(
        conn,
        "SELECT effective_at, quantity, epc_uri, from_location, counterparty, reference, actor"
        " FROM ledger_entries WHERE lot_id = %s AND movement = 'issue'"
        " ORDER BY effective_at, entry_id",
        (lot_id,),
        ["at", "quantity", "epc_uri", "from_location", "counterparty", "reference", "actor"],
    )


async def excursions_during_stays(
    conn: AsyncConnection[TupleRow], lot_id: int
) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for stay in await lot_stays(conn, lot_id):
        found += await _rows(
            conn,
            "SELECT excursion_id, location_id, kind, level, started_at, ended_at, peak_value"
            " FROM excursions WHERE location_id = %s"
            " AND started_at < coalesce(%s::timestamptz, 'infinity')"
            " AND coalesce(ended_at, 'infinity') > %s::timestamptz ORDER BY started_at",
            (stay.location_id, stay.end, stay.start),
            ["excursion_id", "location_id", "kind", "level", "started_at", "ended_at", "peak"],
        )
    return found


async def exposure_summary(
    conn: AsyncConnection[TupleRow], lot_id: int, now: datetime
) -> dict[str, Any] | None:
    """The cold-chain part's whole-life exposure of the lot, summarised; None without it."""
    try:
        from cloud.coldchain import ColdChainError
        from cloud.coldchain.exposure import lot_exposure
    except ImportError:  # the cold-chain part is optional for the ledger
        return None
    try:
        found = await lot_exposure(conn, lot_id, now=now, bucket=timedelta(days=1))
    except ColdChainError as err:
        # a recall must still answer where the stock is; say why the exposure is missing
        return {"as_of": now, "error": str(err)}
    if found is None:
        return None
    use = found.exposure.budget
    return {
        "as_of": now,
        "mkt_celsius": found.exposure.mkt,
        "worst_window_mkt_celsius": found.exposure.worst_window_mkt,
        "time_out_of_range_seconds": use.out_of_range.total_seconds(),
        "time_unknown_seconds": use.unknown.total_seconds(),
        "time_frozen_seconds": use.frozen.total_seconds(),
        "stability_budget_remaining_seconds": use.remaining.total_seconds(),
        "stability_budget_exhausted": use.exhausted,
        "excursions": len(found.excursions),
    }


async def recall_hold(
    conn: AsyncConnection[TupleRow],
    lot_id: int,
    *,
    actor: str,
    reason: str,
    reference: str,
    effective_at: datetime,
) -> int:
    """Puts every balance of the lot on recall hold in place; returns the entries written.

    A second call finds nothing left to hold and writes nothing.
    """
    await lock_head(conn)  # the ledger's lock first, as every writer takes it
    cur = await conn.execute(
        "SELECT location_id, status, quantity FROM balances WHERE lot_id = %s"
        " AND status <> 'recalled' AND quantity > 0 ORDER BY location_id, status",
        (lot_id,),
    )
    drafts = [
        Draft(
            Movement.RECALL_HOLD,
            lot_id,
            int(qty),
            effective_at,
            actor,
            frm=Place(str(loc), Status(st)),
            to=Place(str(loc), Status.RECALLED),
            reason=reason,
            reference=reference,
        )
        for loc, st, qty in await cur.fetchall()
    ]
    await post(conn, drafts)
    await conn.execute("UPDATE lots SET status = 'recalled' WHERE lot_id = %s", (lot_id,))
    return len(drafts)
