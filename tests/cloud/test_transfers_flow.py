"""A transfer end to end through a real database: order, FEFO picks, the outbound door, transit,
dispatch with its generated ASN, a transit logger, and receipt at the other site's door."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, timedelta

import psycopg
import pytest
from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from cloud.ledger.chain import verify
from cloud.receiving.asn import AsnIn
from cloud.receiving.store import create_asn
from cloud.transfers.dispatch import dispatch
from cloud.transfers.loggers import Sample, attach, store_samples
from cloud.transfers.picking import suggest
from cloud.transfers.store import TransferIn, create_transfer, get_transfer, site_stock, today
from protocols.gs1.epc import encode_sgtin96, encode_sscc96
from protocols.records import Direction
from tests.support.ledger_seed import DOCK, GTIN_A, GTIN_B, SITE, seed
from tests.support.transfers_seed import (
    CASE_1,
    CASE_2,
    DOCK_2,
    PALLET,
    SITE_2,
    T0,
    Doors,
    add_second_site,
    balances,
    order,
    stock_in,
    supplier_asn,
)

pytestmark = pytest.mark.integration


@pytest.fixture
async def conn(timescale_url: str) -> AsyncIterator[AsyncConnection[TupleRow]]:
    async with await psycopg.AsyncConnection.connect(timescale_url) as c:
        await seed(c)
        await add_second_site(c)
        await c.execute(
            "INSERT INTO shelf_life_rules VALUES ('site', %s, interval '90 days')", (SITE_2,)
        )
        await create_asn(c, AsnIn.model_validate(supplier_asn()))
        await c.commit()
        yield c


async def test_picking_is_fefo_and_skips_short_dated_stock(conn: AsyncConnection[TupleRow]) -> None:
    await stock_in(conn, Doors(conn))
    transfer_id = await create_transfer(conn, order())
    t = await get_transfer(conn, transfer_id)
    assert t is not None
    assert t.min_remaining == timedelta(days=90)
    stock = await site_stock(conn, SITE, [GTIN_A, GTIN_B])
    s = suggest(t.lines, stock, on=today(T0), min_remaining=t.min_remaining)
    assert [(p.lot_number, p.quantity) for p in s.picks] == [("L1", 3), ("B7", 12)]
    assert [(k.lot_number, k.reason) for k in s.skipped] == [
        ("L0", "short-dated: 30 days left, 90 required")
    ]
    # without the rule L0 (earliest expiry) goes first
    s = suggest(t.lines, stock, on=today(T0), min_remaining=timedelta(0))
    assert [(p.lot_number, p.quantity) for p in s.picks] == [("L0", 2), ("L1", 1), ("B7", 12)]


async def test_transfer_ships_blocks_travels_and_is_received(
    conn: AsyncConnection[TupleRow],
) -> None:
    doors = Doors(conn)
    await stock_in(conn, doors)
    transfer_id = await create_transfer(conn, order())
    await conn.commit()
    transit = "transit:TR-1"

    # a short-dated unit and an unknown one at the outbound door: blocked, nothing moves
    short_dated = encode_sgtin96(GTIN_A, 90, 7)
    got = await doors.passage(DOCK, Direction.OUTBOUND, [short_dated], T0 + timedelta(hours=1))
    assert (got["outcome"], got["transfer"]) == ("nothing", "TR-1")
    assert got["blocked"] == [f"(01){GTIN_A}(21)90 (short-dated: 30 days left, 90 required)"]
    # the pallet passes whole: 3 tagged units and 12 untagged into transit
    pallet = encode_sscc96(PALLET, 7)
    got = await doors.passage(DOCK, Direction.OUTBOUND, [pallet], T0 + timedelta(hours=2))
    assert (got["outcome"], got["count"], got["blocked"]) == ("complete", 15, [])
    assert await balances(conn) == {
        ("L0", DOCK, "available", 2), ("L1", transit, "available", 3),
        ("B7", transit, "available", 12),
    }  # fmt: skip
    cur = await conn.execute(
        "SELECT outcome, count(*) FROM transfer_door_events GROUP BY 1 ORDER BY 1"
    )
    assert await cur.fetchall() == [("blocked", 1), ("shipped", 4)]

    # dispatch: site 2 gets an ASN listing the pallet as it was loaded
    t = await get_transfer(conn, transfer_id)
    assert t is not None
    shipped = T0 + timedelta(hours=3)
    asn_id = await dispatch(conn, t, shipped)
    cur = await conn.execute(
        "SELECT site_id, reference, document FROM asns WHERE asn_id = %s", (asn_id,)
    )
    row = await cur.fetchone()
    assert row is not None
    assert row[:2] == (SITE_2, "TR-1")
    contents = {c["sscc"]: c["contents"] for c in row[2]["containers"]}
    assert contents[CASE_1][0]["serials"] == ["1", "2", "3"]
    assert contents[CASE_2][0]["quantity"] == 12

    # the logger read out on arrival: 10 °C for an hour in the middle of the trip
    t = await get_transfer(conn, transfer_id)
    assert t is not None
    sensor = await attach(conn, t, "TT-0001", "logger")
    samples = [
        Sample(shipped + timedelta(minutes=10 * i), 10.0 if 6 <= i < 12 else 5.0) for i in range(18)
    ]
    assert await store_samples(conn, sensor, samples, shipped + timedelta(hours=3)) == 18
    assert await store_samples(conn, sensor, samples, shipped + timedelta(hours=3)) == 0
    await conn.commit()

    arrived = shipped + timedelta(hours=3)
    got = await doors.passage(DOCK_2, Direction.INBOUND, [pallet], arrived)
    assert (got["outcome"], got["count"]) == ("complete", 15)
    assert got["transfers"] == ["TR-1"]
    assert len(got["quarantined_in_transit"]["TR-1"]) == 2  # L1 and B7
    assert await balances(conn) == {
        ("L0", DOCK, "available", 2), ("L1", DOCK_2, "quarantined", 3),
        ("B7", DOCK_2, "quarantined", 12),
    }  # fmt: skip
    cur = await conn.execute("SELECT status, received_at FROM transfers")
    assert await cur.fetchone() == ("received", arrived)
    cur = await conn.execute("SELECT location_id, level, kind FROM excursions")
    assert await cur.fetchall() == [(transit, "action", "high")]
    assert (await verify(conn)).ok


async def test_door_blocks_recalled_and_unordered_units(conn: AsyncConnection[TupleRow]) -> None:
    doors = Doors(conn)
    await stock_in(conn, doors)
    doc = order().model_dump(mode="json")
    doc["lines"] = [{"gtin": GTIN_A, "lot": "L0", "quantity": 1}]
    doc["min_remaining_days"] = 0
    await create_transfer(conn, TransferIn.model_validate(doc))
    await conn.execute("UPDATE lots SET status = 'recalled' WHERE lot_number = 'L1'")
    await conn.commit()
    reads = [encode_sgtin96(GTIN_A, s, 7) for s in (1, 90, 91)]
    got = await doors.passage(DOCK, Direction.OUTBOUND, reads, T0 + timedelta(hours=1))
    assert got["outcome"] == "partial"
    assert got["shipped"] == ["urn:epc:id:sgtin:0614141.012345.90"]
    assert sorted(got["blocked"]) == [
        f"(01){GTIN_A}(21)1 (lot recalled)",
        f"(01){GTIN_A}(21)91 (not ordered)",
    ]
    assert date(2026, 4, 1) > today(T0)
