"""Outbound to customers and withdrawal at the point of use, through a real database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import psycopg
import pytest
from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from cloud.ledger.chain import verify
from cloud.receiving.asn import AsnIn
from cloud.receiving.store import create_asn
from cloud.transfers import TransferStateError
from cloud.transfers.dispatch import dispatch
from cloud.transfers.door_list import door_list
from cloud.transfers.store import TransferIn, create_transfer, get_transfer
from cloud.transfers.withdrawal import withdraw
from edge.door_guard import DoorGuard
from protocols.door_list import DoorList
from protocols.gs1.epc import encode_sgtin96
from protocols.records import Direction, PortalPassage
from tests.support.ledger_seed import DOCK, GTIN_A, GTIN_B, seed
from tests.support.transfers_seed import T0, Doors, balances, stock_in, supplier_asn

pytestmark = pytest.mark.integration


@pytest.fixture
async def stocked(timescale_url: str) -> AsyncIterator[tuple[AsyncConnection[TupleRow], Doors]]:
    async with await psycopg.AsyncConnection.connect(timescale_url) as c:
        await seed(c)
        await create_asn(c, AsnIn.model_validate(supplier_asn()))
        await c.commit()
        doors = Doors(c)
        await stock_in(c, doors)
        yield c, doors


async def test_withdrawal_by_barcode_rfid_and_digital_link(
    stocked: tuple[AsyncConnection[TupleRow], Doors],
) -> None:
    conn, _ = stocked
    at = T0 + timedelta(days=1)
    scans = [
        f"(01){GTIN_A}(21)1",  # a tagged unit by its barcode
        encode_sgtin96(GTIN_A, 2, 7),  # and one by its RFID tag
        f"(01){GTIN_B}(17)270630(10)B7",  # one untagged unit of the lot
        f"https://id.gs1.org/01/{GTIN_B}",  # the first-expiring lot of the GTIN
        f"(01){GTIN_B}(17)260101(10)B7",  # its printed expiry is past
        f"(01){GTIN_A}(21)1",  # the same unit again
        "hello",
        f"(01){GTIN_A}(21)777",
    ]
    await conn.execute("UPDATE lots SET status = 'recalled' WHERE lot_number = 'L0'")
    scans.append(encode_sgtin96(GTIN_A, 90, 7))
    done = await withdraw(
        conn, location_id=DOCK, scans=scans, ward="Ward 3", reference="W-1", actor="nurse",
        at=at,
    )  # fmt: skip
    await conn.commit()
    # units received per their pallet's ASN are stored under their GS1 key
    assert [d.epc_uri for d in done.issued] == [
        f"(01){GTIN_A}(21)1", f"(01){GTIN_A}(21)2", None, None,
    ]  # fmt: skip
    reasons = dict(done.blocked)
    assert reasons[f"(01){GTIN_B}(17)260101(10)B7"] == "expired 2026-01-01"
    assert reasons[f"(01){GTIN_A}(21)1"] == "scanned twice"
    assert reasons["hello"].startswith("hello: ")
    assert reasons[f"(01){GTIN_A}(21)777"] == "unknown unit"
    assert reasons[encode_sgtin96(GTIN_A, 90, 7)] == "lot recalled"
    assert ("B7", DOCK, "available", 10) in await balances(conn)
    assert ("L1", DOCK, "available", 1) in await balances(conn)
    cur = await conn.execute(
        "SELECT count(*), min(counterparty) FROM ledger_entries WHERE reference = 'withdrawal:W-1'"
    )
    assert await cur.fetchone() == (4, "Ward 3")
    again = await withdraw(
        conn, location_id=DOCK, scans=[f"(01){GTIN_A}(21)1"], ward="Ward 3", reference="W-2",
        actor="nurse", at=at,
    )  # fmt: skip
    assert again.blocked == [(f"(01){GTIN_A}(21)1", "not on hand here")]
    assert (await verify(conn)).ok


async def test_customer_shipment_is_delivered_off_the_books(
    stocked: tuple[AsyncConnection[TupleRow], Doors],
) -> None:
    conn, doors = stocked
    order = TransferIn.model_validate(
        {
            "reference": "SO-1", "from_site": "site-1", "customer": "Hospital A",
            "lines": [{"gtin": GTIN_A, "lot": "L1", "quantity": 1}],
        }
    )  # fmt: skip
    tid = await create_transfer(conn, order)
    await conn.commit()
    got = await doors.passage(
        DOCK, Direction.OUTBOUND,
        [encode_sgtin96(GTIN_A, 1, 7), encode_sgtin96(GTIN_A, 2, 7)], T0 + timedelta(hours=1),
    )  # fmt: skip
    assert got["shipped"] == [f"(01){GTIN_A}(21)1"]
    assert got["blocked"] == [f"(01){GTIN_A}(21)2 (not ordered)"]
    t = await get_transfer(conn, tid)
    assert t is not None
    assert await dispatch(conn, t, T0 + timedelta(hours=2)) is None
    await conn.commit()
    t = await get_transfer(conn, tid)
    assert t is not None
    assert t.status == "delivered"
    assert not [b for b in await balances(conn) if b[1] == "transit:SO-1"]
    cur = await conn.execute(
        "SELECT movement, counterparty FROM ledger_entries WHERE reference = 'transfer:SO-1'"
        " ORDER BY entry_id"
    )
    assert await cur.fetchall() == [("move", None), ("issue", "Hospital A")]
    with pytest.raises(TransferStateError, match="is delivered, not open"):
        await dispatch(conn, t, T0 + timedelta(hours=3))


async def test_the_gateway_door_guard_alarms_on_what_the_cloud_blocks(
    stocked: tuple[AsyncConnection[TupleRow], Doors],
) -> None:
    conn, _ = stocked
    at = T0 + timedelta(hours=1)
    assert (await door_list(conn, "site-1", at)).ordered_gtins == []  # nothing loading
    order = TransferIn.model_validate(
        {
            "reference": "TR-G", "from_site": "site-1", "to_site": None, "customer": "H",
            "lines": [{"gtin": GTIN_A, "quantity": 2}], "min_remaining_days": 0,
        }
    )  # fmt: skip
    await create_transfer(conn, order)
    await conn.execute("UPDATE lots SET status = 'recalled' WHERE lot_number = 'L1'")
    listed = await door_list(conn, "site-1", at)
    assert listed.ordered_gtins == [GTIN_A]
    assert listed.blocked[f"(01){GTIN_A}(21)1"] == "lot recalled"
    assert f"(01){GTIN_A}(21)90" not in listed.blocked  # lot L0, usable

    class Beacon:
        def __init__(self) -> None:
            self.events: list[tuple[str, str]] = []

        async def raise_alarm(self, key: str, message: str) -> None:
            self.events.append(("raise", key))

        async def clear_alarm(self, key: str, message: str) -> None:
            self.events.append(("clear", key))

    beacon = Beacon()
    guard = DoorGuard(beacon)
    guard.update(DoorList.model_validate_json(listed.model_dump_json()))  # as sent on the wire

    def passage(epcs: list[str]) -> PortalPassage:
        return PortalPassage(
            passage_id="p", door_id=DOCK, reader_id="r", direction=Direction.OUTBOUND,
            started_at=at, ended_at=at, epcs=tuple(epcs),
        )  # fmt: skip

    bad = await guard.judge(passage([encode_sgtin96(GTIN_A, 1, 7), encode_sgtin96(GTIN_B, 5, 7)]))
    assert bad == [
        (f"(01){GTIN_A}(21)1", "lot recalled"), (f"(01){GTIN_B}(21)5", "not ordered")
    ]  # fmt: skip
    assert await guard.judge(passage([encode_sgtin96(GTIN_A, 90, 7)])) == []
    assert beacon.events == [("raise", f"door:{DOCK}"), ("clear", f"door:{DOCK}")]
