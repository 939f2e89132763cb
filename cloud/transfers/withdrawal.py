"""Consumption at the point of use: a ward withdraws what it scans, expiry and status checked.

Each scan (RFID EPC, GS1 barcode or Digital Link, see ``scans``) is judged on its own:

- a serialized unit must be on hand at the withdrawal location;
- without a serial, one untagged unit is taken from the location: of the scanned lot, or, when
  the code has no lot, of the GTIN's lot that expires first there;
- the stock must be usable (available or released), its lot neither quarantined, rejected nor
  recalled, and neither the lot's expiry nor the expiry printed on the code may be past.

What passes is issued in the ledger (counterparty: the ward, reference ``withdrawal:<ref>``);
what does not is reported with the reason and nothing of it moves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from cloud.ledger.core import Draft, Movement, Place, Status
from cloud.ledger.service import post
from cloud.transfers.picking import refusal
from cloud.transfers.scans import ScanError, Scanned, identify
from cloud.transfers.store import today


@dataclass
class Withdrawal:
    issued: list[Draft] = field(default_factory=list)
    blocked: list[tuple[str, str]] = field(default_factory=list)


def _earliest(a: date | None, b: date | None) -> date | None:
    return min((d for d in (a, b) if d is not None), default=None)


async def withdraw(
    conn: AsyncConnection[TupleRow],
    *,
    location_id: str,
    scans: list[str],
    ward: str,
    reference: str,
    actor: str,
    at: datetime,
) -> Withdrawal:
    """Issues what the scans name from ``location_id``; blocked scans are reported, not moved."""
    out = Withdrawal()
    taken: dict[tuple[int, str], int] = {}
    for text in scans:
        try:
            scan = identify(text, today=today(at))
        except ScanError as err:
            out.blocked.append((text, str(err)))
            continue
        found = await (
            _unit(conn, scan, location_id)
            if scan.key
            else _bulk(conn, scan, location_id, taken, on=today(at))
        )
        if isinstance(found, str):
            out.blocked.append((text, found))
            continue
        lot_id, status, expiry, lot_status, epc = found
        why = refusal(
            status=status, lot_status=lot_status, expiry=_earliest(expiry, scan.expiry),
            on=today(at), min_remaining=timedelta(0),
        )  # fmt: skip
        if why is not None or (epc is not None and epc in {d.epc_uri for d in out.issued}):
            out.blocked.append((text, why or "scanned twice"))
            continue
        if epc is None:
            taken[lot_id, status] = taken.get((lot_id, status), 0) + 1
        out.issued.append(
            Draft(
                Movement.ISSUE, lot_id, 1, at, actor, frm=Place(location_id, Status(status)),
                epc_uri=epc, reason=f"withdrawn for {ward}", reference=f"withdrawal:{reference}",
                counterparty=ward,
            )
        )  # fmt: skip
    await post(conn, out.issued)
    return out


_Found = tuple[int, str, date | None, str, str | None]


async def _unit(conn: AsyncConnection[TupleRow], scan: Scanned, location_id: str) -> _Found | str:
    cur = await conn.execute(
        "SELECT u.epc_uri, u.lot_id, u.location_id, u.status, l.expiry, l.status"
        " FROM units u JOIN lots l USING (lot_id) WHERE u.gs1_key = %s",
        (scan.key,),
    )
    row = await cur.fetchone()
    if row is None:
        return "unknown unit"
    epc, lot_id, loc, status, expiry, lot_status = row
    if loc != location_id:
        return "not on hand here" if loc is None else f"on hand at {loc}, not here"
    return int(lot_id), str(status), expiry, str(lot_status), str(epc)


async def _bulk(
    conn: AsyncConnection[TupleRow],
    scan: Scanned,
    location_id: str,
    taken: dict[tuple[int, str], int],
    *,
    on: date,
) -> _Found | str:
    """One untagged unit of the scanned lot (or the first-expiring usable lot of the GTIN) here;
    when none may be used, the first one, so that its reason is reported."""
    cur = await conn.execute(
        "SELECT b.lot_id, b.status, l.expiry, l.status, b.quantity - (SELECT count(*) FROM units u"
        "  WHERE u.lot_id = b.lot_id AND u.location_id = b.location_id AND u.status = b.status)"
        " FROM balances b JOIN lots l USING (lot_id) WHERE b.location_id = %s AND l.gtin = %s"
        " AND (%s::text IS NULL OR l.lot_number = %s) AND b.quantity > 0"
        " ORDER BY b.status IN ('available', 'released') DESC, l.expiry NULLS LAST, b.lot_id",
        (location_id, scan.gtin, scan.lot, scan.lot),
    )
    rows = [
        (int(lot), str(st), exp, str(ls))
        for lot, st, exp, ls, untagged in await cur.fetchall()
        if int(untagged) - taken.get((int(lot), str(st)), 0) > 0
    ]
    if not rows:
        return "no untagged unit of it on hand here"
    for lot_id, status, expiry, lot_status in rows:
        why = refusal(
            status=status, lot_status=lot_status, expiry=expiry, on=on,
            min_remaining=timedelta(0),
        )  # fmt: skip
        if why is None:
            return lot_id, status, expiry, lot_status, None
    lot_id, status, expiry, lot_status = rows[0]
    return lot_id, status, expiry, lot_status, None
