"""Ledger operations other parts call, each inside the caller's transaction (never committing).

The cold-chain engine calls ``quarantine_at_location``, ``dispose_lot``, ``lot_stays`` and
``lots_at_location``; receiving, counts and recall call ``post`` with their own drafts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal, cast

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from cloud.ledger import InvalidMovementError, NotQuarantinedError, UnknownLotError
from cloud.ledger.core import Draft, Movement, Place, Status, Stay, stays
from cloud.ledger.store import lock_head, post

__all__ = [
    "Stay",
    "dispose_lot",
    "ensure_lot",
    "lot_stays",
    "lots_at_location",
    "post",
    "quarantine_at_location",
    "register_units",
]


async def ensure_lot(
    conn: AsyncConnection[TupleRow], *, gtin: str, lot_number: str, expiry: date | None
) -> int:
    """The id of lot (gtin, lot_number), created when new; the product must be registered."""
    cur = await conn.execute(
        "INSERT INTO lots (gtin, lot_number, expiry)"
        " SELECT %s, %s, %s WHERE EXISTS (SELECT 1 FROM products WHERE gtin = %s)"
        " ON CONFLICT (gtin, lot_number) DO UPDATE SET expiry = coalesce(lots.expiry,"
        " EXCLUDED.expiry) RETURNING lot_id",
        (gtin, lot_number, expiry, gtin),
    )
    row = await cur.fetchone()
    if row is None:
        raise UnknownLotError(f"product {gtin} is not registered")
    return int(row[0])


@dataclass(frozen=True)
class NewUnit:
    epc_uri: str
    unit_kind: Literal["sgtin", "sscc"]
    lot_id: int | None
    parent_uri: str | None
    gs1_key: str | None = None  # "(00)<sscc>" or "(01)<gtin>(21)<serial>"


async def register_units(conn: AsyncConnection[TupleRow], units: Sequence[NewUnit]) -> None:
    """Records serialized and logistic units (idempotent; a known unit keeps its lot)."""
    if not units:
        return
    # containers first, so that a unit's parent exists when it is inserted
    ordered = sorted(units, key=lambda u: (u.unit_kind != "sscc", u.parent_uri is not None))
    async with conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO units (epc_uri, unit_kind, lot_id, parent_uri, gs1_key)"
            " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (epc_uri) DO UPDATE SET"
            " parent_uri = coalesce(EXCLUDED.parent_uri, units.parent_uri),"
            " gs1_key = coalesce(units.gs1_key, EXCLUDED.gs1_key)",
            [(u.epc_uri, u.unit_kind, u.lot_id, u.parent_uri, u.gs1_key) for u in ordered],
        )


async def _audit(
    conn: AsyncConnection[TupleRow], actor: str, action: str, subject: str, reason: str
) -> None:
    await conn.execute(
        "INSERT INTO audit_log (actor, action, subject, reason) VALUES (%s, %s, %s, %s)",
        (actor, action, subject, reason),
    )


async def quarantine_at_location(
    conn: AsyncConnection[TupleRow],
    *,
    location_id: str,
    effective_at: datetime,
    actor: str,
    reason: str,
    reference: str,
) -> list[int]:
    """Puts every usable balance at the location in quarantine; returns the lots moved.

    Idempotent per reference: a lot already quarantined here under ``reference`` is skipped,
    so a replay adds nothing while a lot that arrived since is still caught.
    """
    await lock_head(conn)
    cur = await conn.execute(
        "SELECT b.lot_id, b.status, b.quantity FROM balances b"
        " WHERE b.location_id = %s AND b.status = ANY(%s) AND b.quantity > 0"
        " AND NOT EXISTS (SELECT 1 FROM ledger_entries e WHERE e.reference = %s"
        "   AND e.movement = 'quarantine' AND e.lot_id = b.lot_id AND e.from_location = %s)"
        " ORDER BY b.lot_id, b.status",
        (location_id, [Status.AVAILABLE.value, Status.RELEASED.value], reference, location_id),
    )
    rows = await cur.fetchall()
    drafts = [
        Draft(
            Movement.QUARANTINE,
            int(lot_id),
            int(qty),
            effective_at,
            actor,
            frm=Place(location_id, Status(status)),
            to=Place(location_id, Status.QUARANTINED),
            reason=reason,
            reference=reference,
        )
        for lot_id, status, qty in rows
    ]
    await post(conn, drafts)
    lots = sorted({d.lot_id for d in drafts})
    if lots:
        await conn.execute(
            "UPDATE lots SET status = 'quarantined' WHERE lot_id = ANY(%s)"
            " AND status IN ('available', 'released')",
            (lots,),
        )
        await _audit(conn, actor, "quarantine", f"location:{location_id}", reason)
    return lots


async def dispose_lot(
    conn: AsyncConnection[TupleRow],
    *,
    lot_id: int,
    decision: Literal["release", "reject"],
    actor: str,
    reason: str,
    effective_at: datetime,
    signature_meaning: str,
) -> None:
    """A QA disposition of everything of the lot in quarantine, as signed ledger entries.

    Raises ``NotQuarantinedError`` when the lot has nothing in quarantine.
    """
    if not signature_meaning.strip() or not reason.strip():
        raise InvalidMovementError("a disposition needs a reason and a signature meaning")
    await lock_head(conn)
    cur = await conn.execute(
        "SELECT location_id, quantity FROM balances WHERE lot_id = %s AND status = 'quarantined'"
        " AND quantity > 0 ORDER BY location_id",
        (lot_id,),
    )
    rows = await cur.fetchall()
    if not rows:
        raise NotQuarantinedError(f"lot {lot_id} has nothing in quarantine")
    movement, status = (
        (Movement.RELEASE, Status.RELEASED)
        if decision == "release"
        else (Movement.REJECT, Status.REJECTED)
    )
    drafts = [
        Draft(
            movement,
            lot_id,
            int(qty),
            effective_at,
            actor,
            frm=Place(str(loc), Status.QUARANTINED),
            to=Place(str(loc), status),
            reason=reason,
            signature_meaning=signature_meaning,
        )
        for loc, qty in rows
    ]
    await post(conn, drafts)
    await conn.execute(
        "UPDATE lots SET status = %s WHERE lot_id = %s AND status <> 'recalled'",
        (status.value, lot_id),
    )
    await _audit(conn, actor, decision, f"lot:{lot_id}", reason)


async def lot_stays(conn: AsyncConnection[TupleRow], lot_id: int) -> list[Stay]:
    """The intervals the ledger says the lot was at each location, in order of start."""
    cur = await conn.execute(
        "SELECT movement, quantity, effective_at, from_location, from_status, to_location,"
        " to_status FROM ledger_entries WHERE lot_id = %s ORDER BY effective_at, entry_id",
        (lot_id,),
    )
    drafts = [
        Draft(
            Movement(movement),
            lot_id,
            int(qty),
            cast(datetime, at),
            "",
            frm=Place(str(fl), Status(fs)) if fl is not None else None,
            to=Place(str(tl), Status(ts)) if tl is not None else None,
        )
        for movement, qty, at, fl, fs, tl, ts in await cur.fetchall()
    ]
    return stays(drafts)


async def lots_at_location(
    conn: AsyncConnection[TupleRow], location_id: str, at: datetime
) -> list[int]:
    """The lots with stock at the location at time ``at`` (by effective time)."""
    cur = await conn.execute(
        "SELECT lot_id FROM ("
        " SELECT lot_id, quantity AS q FROM ledger_entries"
        "  WHERE to_location = %(loc)s AND effective_at <= %(at)s"
        " UNION ALL"
        " SELECT lot_id, -quantity FROM ledger_entries"
        "  WHERE from_location = %(loc)s AND effective_at <= %(at)s"
        ") moves GROUP BY lot_id HAVING sum(q) > 0 ORDER BY lot_id",
        {"loc": location_id, "at": at},
    )
    return [int(row[0]) for row in await cur.fetchall()]
