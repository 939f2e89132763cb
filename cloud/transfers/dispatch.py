"""Dispatch: the loading is closed and the receiving site gets its ASN, generated from transit.

The ASN lists exactly what the ledger holds at the shipment's transit location: the containers
(nested as they were), the tagged units in them or loose, and the untagged quantities recorded
in each container. Its reference is the transfer's, its supplier the sending site, so the
receiving site's doors receive against it like any supplier's ASN (short, over, unexpected).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from cloud.ledger.core import USABLE, Draft, Movement, Place, Status
from cloud.ledger.service import post
from cloud.receiving.asn import AsnIn
from cloud.receiving.store import create_asn
from cloud.transfers import TransferStateError
from cloud.transfers.store import Transfer

_Lines = dict[tuple[str, str, date | None], list[str]]


async def asn_for(conn: AsyncConnection[TupleRow], t: Transfer) -> AsnIn:
    """The ASN announcing what is in the transfer's transit location (refused when empty)."""
    assert t.to_site is not None
    cur = await conn.execute(
        "SELECT u.gs1_key, u.unit_kind, p.gs1_key, l.gtin, l.lot_number, l.expiry"
        " FROM units u LEFT JOIN units p ON p.epc_uri = u.parent_uri"
        " AND p.location_id = u.location_id LEFT JOIN lots l ON l.lot_id = u.lot_id"
        " WHERE u.location_id = %s AND u.gs1_key IS NOT NULL ORDER BY u.gs1_key",
        (t.transit_location_id,),
    )
    containers: dict[str, dict[str, Any]] = {}
    serials: dict[str | None, _Lines] = defaultdict(lambda: defaultdict(list))
    for key, kind, parent, gtin, lot, expiry in await cur.fetchall():
        if kind == "sscc":
            containers[str(key)[4:]] = {"sscc": str(key)[4:], "parent_sscc": _digits(parent)}
        else:
            serial = str(key).split("(21)", 1)[1]
            serials[_digits(parent)][str(gtin), str(lot), expiry].append(serial)
    bulk = await _bulk(conn, [f"(00){s}" for s in containers])
    for sscc, c in containers.items():
        lines = [_line(g, lot, e, serials=s) for (g, lot, e), s in serials[sscc].items()]
        lines += [_line(g, lot, e, quantity=q) for g, lot, e, q in bulk.get(sscc, [])]
        c["contents"] = lines
    loose = [_line(g, lot, e, serials=s) for (g, lot, e), s in serials[None].items()]
    if not containers and not loose:
        raise TransferStateError(f"transfer {t.reference!r}: nothing is in transit to dispatch")
    return AsnIn.model_validate(
        {
            "site_id": t.to_site, "reference": t.reference, "supplier": t.from_site,
            "expected_at": t.expected_at, "containers": list(containers.values()),
            "loose": loose,
        }
    )  # fmt: skip


def _digits(key: object) -> str | None:
    return None if key is None else str(key)[4:]


def _line(
    gtin: str,
    lot: str,
    expiry: date | None,
    *,
    serials: list[str] | None = None,
    quantity: int | None = None,
) -> dict[str, Any]:
    line: dict[str, Any] = {"gtin": gtin, "lot": lot, "expiry": expiry}
    if serials:
        line["serials"] = sorted(serials)
    else:
        line["quantity"] = quantity
    return line


async def _bulk(
    conn: AsyncConnection[TupleRow], keys: list[str]
) -> dict[str, list[tuple[str, str, date | None, int]]]:
    cur = await conn.execute(
        "SELECT c.container_key, l.gtin, l.lot_number, l.expiry, c.quantity"
        " FROM container_contents c JOIN lots l USING (lot_id)"
        " WHERE c.container_key = ANY(%s) ORDER BY 1, 2, 3",
        (keys,),
    )
    out: dict[str, list[tuple[str, str, date | None, int]]] = defaultdict(list)
    for key, gtin, lot, expiry, qty in await cur.fetchall():
        out[str(key)[4:]].append((str(gtin), str(lot), expiry, int(qty)))
    return out


async def dispatch(conn: AsyncConnection[TupleRow], t: Transfer, at: datetime) -> int | None:
    """Closes an open transfer's loading; a site transfer gets its ASN (its id is returned), a
    customer's shipment leaves the books (issued from transit to the customer).

    The containers' recorded untagged contents are handed over to the ASN: the receipt at the
    other site records them again, as for any container received.
    """
    if t.status != "open":
        raise TransferStateError(f"transfer {t.reference!r} is {t.status}, not open")
    asn_id: int | None = None
    if t.to_site is None:
        await _deliver(conn, t, at)
    else:
        asn = await asn_for(conn, t)
        asn_id = await create_asn(conn, asn)
        await conn.execute(
            "DELETE FROM container_contents WHERE container_key = ANY(%s)",
            ([f"(00){c.sscc}" for c in asn.containers],),
        )
    await conn.execute(
        "UPDATE transfers SET status = %s, shipped_at = %s, asn_id = %s,"
        " received_at = CASE WHEN %s THEN %s END WHERE transfer_id = %s",
        (
            "in_transit" if t.to_site else "delivered",
            at,
            asn_id,
            t.to_site is None,
            at,
            t.transfer_id,
        ),
    )
    return asn_id


async def _deliver(conn: AsyncConnection[TupleRow], t: Transfer, at: datetime) -> None:
    """Issues everything in transit to the customer; refused when any of it is not usable."""
    cur = await conn.execute(
        "SELECT lot_id, status, quantity FROM balances WHERE location_id = %s AND quantity > 0"
        " ORDER BY lot_id, status",
        (t.transit_location_id,),
    )
    rows = await cur.fetchall()
    if not rows:
        raise TransferStateError(f"transfer {t.reference!r}: nothing is in transit to dispatch")
    held = [f"lot {lot} ({st})" for lot, st, _ in rows if Status(st) not in USABLE]
    if held:
        raise TransferStateError(f"transfer {t.reference!r}: not usable in transit: {held}")
    await post(
        conn,
        [
            Draft(
                Movement.ISSUE, int(lot), int(qty), at, "dispatch",
                frm=Place(t.transit_location_id, Status(st)), counterparty=t.customer,
                reason=f"delivered to {t.customer}", reference=f"transfer:{t.reference}",
            )
            for lot, st, qty in rows
        ],
    )  # fmt: skip
    await conn.execute(
        "UPDATE units SET location_id = NULL, status = NULL, updated_at = now()"
        " WHERE location_id = %s AND unit_kind = 'sscc'",
        (t.transit_location_id,),
    )
