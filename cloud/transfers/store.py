"""Transfer orders in the database (inside the caller's transaction; never commits).

Creating an order also creates its transit location (kind ``transit``, at the sending site,
with the first product's storage profile): the ledger moves what the outbound door lets through
there, so a shipment's stock is on the books while it travels and its loggers are mounted there.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Annotated

from psycopg import AsyncConnection
from psycopg.rows import TupleRow
from pydantic import BaseModel, ConfigDict, Field, model_validator

from cloud.transfers import TransferRejectedError
from cloud.transfers.picking import Line, Stock

_Gtin = Annotated[str, Field(pattern=r"^[0-9]{14}$")]
_Text = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]


class LineIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    gtin: _Gtin
    lot: _Text | None = None
    quantity: int = Field(gt=0, le=1_000_000)


class TransferIn(BaseModel):
    """A transfer to another site (``to_site``) or a shipment to a customer (``customer``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reference: _Text
    from_site: _Text
    to_site: _Text | None = None
    customer: _Text | None = None
    lines: list[LineIn] = Field(min_length=1, max_length=1000)
    min_remaining_days: int | None = Field(default=None, ge=0, le=3650)
    expected_at: datetime | None = None

    @model_validator(mode="after")
    def _one_destination(self) -> TransferIn:
        if (self.to_site is None) == (self.customer is None):
            raise ValueError("give exactly one of to_site and customer")
        if self.to_site == self.from_site:
            raise ValueError("a transfer goes to another site")
        return self


@dataclass(frozen=True)
class Transfer:
    transfer_id: int
    reference: str
    from_site: str
    to_site: str | None
    customer: str | None
    status: str
    transit_location_id: str
    asn_id: int | None
    min_remaining: timedelta
    expected_at: datetime | None
    shipped_at: datetime | None
    received_at: datetime | None
    lines: tuple[Line, ...]


async def create_transfer(conn: AsyncConnection[TupleRow], order: TransferIn) -> int:
    """Stores the order and its transit location; refuses unknown sites and products."""
    sites = [s for s in (order.from_site, order.to_site) if s is not None]
    cur = await conn.execute("SELECT site_id FROM sites WHERE site_id = ANY(%s)", (sites,))
    missing = set(sites) - {str(r[0]) for r in await cur.fetchall()}
    if missing:
        raise TransferRejectedError(f"unknown site {', '.join(sorted(missing))}")
    gtins = sorted({line.gtin for line in order.lines})
    cur = await conn.execute("SELECT gtin, profile_id FROM products WHERE gtin = ANY(%s)", (gtins,))
    profiles = {str(g): str(p) for g, p in await cur.fetchall()}
    if set(gtins) - set(profiles):
        unknown = ", ".join(sorted(set(gtins) - set(profiles)))
        raise TransferRejectedError(f"products not registered: {unknown}")
    cur = await conn.execute("SELECT 1 FROM transfers WHERE reference = %s", (order.reference,))
    if await cur.fetchone() is not None:
        raise TransferRejectedError(f"transfer {order.reference!r} already exists")
    transit = f"transit:{order.reference}"
    await conn.execute(
        "INSERT INTO locations (location_id, site_id, kind, name, profile_id)"
        " VALUES (%s, %s, 'transit', %s, %s)",
        (transit, order.from_site, f"in transit: {order.reference}", profiles[gtins[0]]),
    )
    days = order.min_remaining_days
    cur = await conn.execute(
        "INSERT INTO transfers (reference, from_site, to_site, customer, min_remaining,"
        " transit_location_id, expected_at) VALUES (%s, %s, %s, %s, %s, %s, %s)"
        " RETURNING transfer_id",
        (
            order.reference, order.from_site, order.to_site, order.customer,
            None if days is None else timedelta(days=days), transit, order.expected_at,
        ),
    )  # fmt: skip
    row = await cur.fetchone()
    assert row is not None
    transfer_id = int(row[0])
    async with conn.cursor() as c:
        await c.executemany(
            "INSERT INTO transfer_lines (transfer_id, line_no, gtin, lot_number, quantity)"
            " VALUES (%s, %s, %s, %s, %s)",
            [
                (transfer_id, n, line.gtin, line.lot, line.quantity)
                for n, line in enumerate(order.lines, start=1)
            ],
        )
    return transfer_id


_COLUMNS = (
    "t.transfer_id, t.reference, t.from_site, t.to_site, t.customer, t.status,"
    " t.transit_location_id, t.asn_id, coalesce(t.min_remaining, r.min_remaining, interval '0'),"
    " t.expected_at, t.shipped_at, t.received_at FROM transfers t LEFT JOIN shelf_life_rules r"
    " ON (r.party_kind, r.party_id) = (CASE WHEN t.to_site IS NULL THEN 'customer' ELSE 'site'"
    " END, coalesce(t.to_site, t.customer))"
)


async def _with_lines(conn: AsyncConnection[TupleRow], row: TupleRow) -> Transfer:
    cur = await conn.execute(
        "SELECT line_no, gtin, lot_number, quantity FROM transfer_lines"
        " WHERE transfer_id = %s ORDER BY line_no",
        (row[0],),
    )
    lines = tuple(Line(int(n), str(g), ln, int(q)) for n, g, ln, q in await cur.fetchall())
    return Transfer(
        int(row[0]), str(row[1]), str(row[2]), row[3], row[4], str(row[5]), str(row[6]),
        row[7], row[8], row[9], row[10], row[11], lines,
    )  # fmt: skip


async def get_transfer(
    conn: AsyncConnection[TupleRow], transfer_id: int, *, lock: bool = False
) -> Transfer | None:
    cur = await conn.execute(
        f"SELECT {_COLUMNS} WHERE t.transfer_id = %s" + (" FOR UPDATE OF t" if lock else ""),
        (transfer_id,),
    )
    row = await cur.fetchone()
    return None if row is None else await _with_lines(conn, row)


async def list_transfers(
    conn: AsyncConnection[TupleRow], *, site_id: str | None, status: str | None, limit: int
) -> list[Transfer]:
    cur = await conn.execute(
        f"SELECT {_COLUMNS} WHERE (%(site)s::text IS NULL OR %(site)s IN (t.from_site, t.to_site))"
        " AND (%(status)s::text IS NULL OR t.status = %(status)s)"
        " ORDER BY t.transfer_id DESC LIMIT %(limit)s",
        {"site": site_id, "status": status, "limit": limit},
    )
    return [await _with_lines(conn, row) for row in await cur.fetchall()]


async def open_transfers_from(conn: AsyncConnection[TupleRow], site_id: str) -> list[Transfer]:
    """The site's transfers still loading (status open), oldest first, locked."""
    cur = await conn.execute(
        f"SELECT {_COLUMNS} WHERE t.from_site = %s AND t.status = 'open'"
        " ORDER BY t.transfer_id FOR UPDATE OF t",
        (site_id,),
    )
    return [await _with_lines(conn, row) for row in await cur.fetchall()]


async def site_stock(
    conn: AsyncConnection[TupleRow], site_id: str, gtins: list[str]
) -> list[Stock]:
    """Balances of these products at the site's locations, transit locations left out."""
    cur = await conn.execute(
        "SELECT b.lot_id, l.gtin, l.lot_number, l.expiry, b.location_id, b.status, b.quantity,"
        " l.status FROM balances b JOIN lots l USING (lot_id)"
        " JOIN locations loc ON loc.location_id = b.location_id"
        " WHERE loc.site_id = %s AND loc.kind <> 'transit' AND l.gtin = ANY(%s)"
        " AND b.quantity > 0 ORDER BY b.lot_id, b.location_id, b.status",
        (site_id, gtins),
    )
    return [
        Stock(int(a), str(g), str(n), e, str(loc), str(s), int(q), str(ls))
        for a, g, n, e, loc, s, q, ls in await cur.fetchall()
    ]


async def shipped_lots(
    conn: AsyncConnection[TupleRow], transfer_id: int
) -> dict[tuple[str, str], int]:
    """How much of each (GTIN, lot) the outbound door has shipped for the transfer so far."""
    cur = await conn.execute(
        "SELECT l.gtin, l.lot_number, sum(e.quantity) FROM transfer_door_events e"
        " JOIN lots l USING (lot_id) WHERE e.transfer_id = %s AND e.outcome = 'shipped'"
        " GROUP BY 1, 2",
        (transfer_id,),
    )
    return {(str(g), str(n)): int(q) for g, n, q in await cur.fetchall()}


def allocate(lines: tuple[Line, ...], per_lot: dict[tuple[str, str], int]) -> dict[int, int]:
    """Counts shipped quantities against lines: a named-lot line first, then any-lot lines.

    >>> allocate((Line(1, "g", "A", 2), Line(2, "g", None, 5)), {("g", "A"): 3, ("g", "B"): 1})
    {1: 2, 2: 2}
    """
    left = dict(per_lot)
    done = {line.line_no: 0 for line in lines}
    ordered = sorted(lines, key=lambda line: (line.lot_number is None, line.line_no))
    for line in ordered:
        for (gtin, lot), qty in left.items():
            if gtin != line.gtin or line.lot_number not in (None, lot) or qty <= 0:
                continue
            take = min(qty, line.quantity - done[line.line_no])
            done[line.line_no] += take
            left[gtin, lot] -= take
    return done


def today(at: datetime) -> date:
    """The UTC date of an aware time (expiry dates are compared by UTC date, as the ledger does)."""
    return at.astimezone(UTC).date()
