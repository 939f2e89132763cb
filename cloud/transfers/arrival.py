"""Receiving a transfer at the other site's door: out of transit, after judging the transit.

The receiving step matches the passage against the generated ASN as it does for any supplier
(short, over, unexpected). For an ASN that belongs to a transfer, ``before_receipt`` first
closes the transit window and runs its verdict: an action-level excursion on a shipment logger
quarantines everything still in transit. ``from_transit`` then turns each receipt draft into a
move out of the transit location with the status the stock has there, so quarantined stock
arrives quarantined and the lot's stays run unbroken from the sending site through the truck to
the receiving dock. ``after_receipt`` marks the transfer received when its ASN is complete.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from cloud.ledger import InsufficientBalanceError
from cloud.ledger.core import Draft, Movement, Place, Status
from cloud.transfers.loggers import condemn, judge_transfer
from cloud.transfers.store import Transfer, get_transfer


async def transfers_of(conn: AsyncConnection[TupleRow], asn_ids: list[int]) -> dict[int, Transfer]:
    """The in-transit transfers these ASNs were generated for, by ASN id."""
    cur = await conn.execute(
        "SELECT asn_id, transfer_id FROM transfers WHERE asn_id = ANY(%s)"
        " AND status IN ('in_transit', 'received') ORDER BY transfer_id FOR UPDATE",
        (asn_ids,),
    )
    out: dict[int, Transfer] = {}
    for asn_id, transfer_id in await cur.fetchall():
        t = await get_transfer(conn, int(transfer_id))
        assert t is not None
        out[int(asn_id)] = t
    return out


async def before_receipt(
    conn: AsyncConnection[TupleRow], transfers: dict[int, Transfer], at: datetime
) -> dict[str, list[int]]:
    """Judges each transfer's transit up to ``at``; quarantines what an action excursion hit.

    Returns the lots quarantined per transfer reference (empty when the transit was clean).
    """
    out: dict[str, list[int]] = {}
    for t in transfers.values():
        verdict = await judge_transfer(conn, t, until=at)
        if verdict is not None and verdict.action:
            out[t.reference] = await condemn(conn, t, verdict, at)
    return out


async def from_transit(
    conn: AsyncConnection[TupleRow],
    drafts: list[Draft],
    transfers: dict[str, Transfer],
) -> list[Draft]:
    """Receipt drafts of transfer ASNs (``reference`` ``asn:<transfer reference>``) as moves."""
    left: dict[tuple[int, str], dict[Status, int]] = {}
    out: list[Draft] = []
    for d in drafts:
        ref = (d.reference or "").removeprefix("asn:")
        t = transfers.get(ref)
        if t is None or d.movement is not Movement.RECEIVE or d.to is None:
            out.append(d)
            continue
        transit = t.transit_location_id
        status = await _status_in_transit(conn, d, transit, left)
        out.append(
            replace(
                d,
                movement=Movement.MOVE,
                frm=Place(transit, status),
                to=Place(d.to.location_id, status),
                reason=f"received out of transit ({t.reference})",
                reference=f"transfer:{t.reference}",
            )
        )
    return out


async def _status_in_transit(
    conn: AsyncConnection[TupleRow],
    d: Draft,
    transit: str,
    left: dict[tuple[int, str], dict[Status, int]],
) -> Status:
    if d.epc_uri is not None:
        cur = await conn.execute(
            "SELECT status FROM units WHERE epc_uri = %s AND location_id = %s",
            (d.epc_uri, transit),
        )
        row = await cur.fetchone()
        if row is None:
            raise InsufficientBalanceError(f"{d.epc_uri} is not in transit at {transit}")
        return Status(row[0])
    if (d.lot_id, transit) not in left:
        cur = await conn.execute(
            "SELECT b.status, b.quantity - (SELECT count(*) FROM units u WHERE u.lot_id = b.lot_id"
            " AND u.location_id = b.location_id AND u.status = b.status)"
            " FROM balances b WHERE b.lot_id = %s AND b.location_id = %s AND b.quantity > 0",
            (d.lot_id, transit),
        )
        left[d.lot_id, transit] = {Status(s): int(q) for s, q in await cur.fetchall()}
    pool = left[d.lot_id, transit]
    for status in sorted(pool, key=lambda s: s is not Status.QUARANTINED):
        if pool[status] >= d.quantity:
            pool[status] -= d.quantity
            return status
    raise InsufficientBalanceError(
        f"{d.quantity} of lot {d.lot_id} are not in transit at {transit}"
    )


async def after_receipt(
    conn: AsyncConnection[TupleRow], completed_asns: list[int], at: datetime
) -> None:
    """Transfers whose ASN the receipt completed are received (their transit window closes)."""
    await conn.execute(
        "UPDATE transfers SET status = 'received', received_at = %s"
        " WHERE asn_id = ANY(%s) AND status = 'in_transit'",
        (at, completed_asns),
    )
