"""The ledger service through a real database: balances, units, quarantine, disposition, chain."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from cloud.ledger import InsufficientBalanceError, InvalidMovementError, NotQuarantinedError
from cloud.ledger.chain import verify
from cloud.ledger.core import Draft, Movement, Place, Status
from cloud.ledger.service import (
    NewUnit,
    dispose_lot,
    ensure_lot,
    lot_stays,
    lots_at_location,
    post,
    quarantine_at_location,
    register_units,
)
from tests.support.ledger_seed import DOCK, FRIDGE, FRIDGE_2, GTIN_A, GTIN_B, seed

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
AVAIL = Status.AVAILABLE


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[AsyncConnection[TupleRow]]:
    async with await psycopg.AsyncConnection.connect(database_url) as c:
        await seed(c)
        await c.commit()
        yield c


def receive(lot: int, qty: int, at: datetime = T0, epc: str | None = None) -> Draft:
    return Draft(Movement.RECEIVE, lot, qty, at, "dock", to=Place(DOCK, AVAIL), epc_uri=epc)


def put_away(lot: int, qty: int, at: datetime, to: str = FRIDGE) -> Draft:
    return Draft(Movement.PUT_AWAY, lot, qty, at, "op", frm=Place(DOCK, AVAIL), to=Place(to, AVAIL))


async def balances(c: AsyncConnection[TupleRow]) -> set[tuple[int, str, str, int]]:
    cur = await c.execute(
        "SELECT lot_id, location_id, status, quantity FROM balances WHERE quantity > 0"
    )
    return {(int(a), str(b), str(s), int(q)) for a, b, s, q in await cur.fetchall()}


async def test_movements_keep_balances_and_refuse_going_negative(
    conn: AsyncConnection[TupleRow],
) -> None:
    lot = await ensure_lot(conn, gtin=GTIN_A, lot_number="L1", expiry=None)
    ids = await post(conn, [receive(lot, 10), put_away(lot, 4, T0 + timedelta(hours=1))])
    await conn.commit()
    assert len(ids) == 2
    assert ids[0] < ids[1]
    assert await balances(conn) == {(lot, DOCK, "available", 6), (lot, FRIDGE, "available", 4)}
    with pytest.raises(InsufficientBalanceError, match="has 3 available at dock-1, 7 asked"):
        await post(conn, [put_away(lot, 3, T0), put_away(lot, 7, T0)])
    await conn.rollback()
    assert await balances(conn) == {(lot, DOCK, "available", 6), (lot, FRIDGE, "available", 4)}
    report = await verify(conn)
    assert report.ok
    assert report.entries == 2


async def test_quarantine_moves_usable_stock_once_per_reference(
    conn: AsyncConnection[TupleRow],
) -> None:
    a = await ensure_lot(conn, gtin=GTIN_A, lot_number="QA1", expiry=None)
    b = await ensure_lot(conn, gtin=GTIN_B, lot_number="QB1", expiry=None)
    await post(conn, [receive(a, 5), put_away(a, 5, T0), receive(b, 3), put_away(b, 2, T0)])
    moved = await quarantine_at_location(
        conn, location_id=FRIDGE, effective_at=T0, actor="rules", reason="8.6 °C", reference="ex-1"
    )
    await conn.commit()
    assert moved == [a, b]
    again = await quarantine_at_location(
        conn, location_id=FRIDGE, effective_at=T0, actor="rules", reason="8.6 °C", reference="ex-1"
    )
    assert again == []
    assert await balances(conn) == {
        (a, FRIDGE, "quarantined", 5),
        (b, FRIDGE, "quarantined", 2),
        (b, DOCK, "available", 1),
    }
    cur = await conn.execute("SELECT count(*) FROM ledger_entries WHERE movement = 'quarantine'")
    assert await cur.fetchone() == (2,)
    cur = await conn.execute("SELECT status FROM lots WHERE lot_id = %s", (a,))
    assert await cur.fetchone() == ("quarantined",)


async def test_disposition_is_signed_and_needs_quarantined_stock(
    conn: AsyncConnection[TupleRow],
) -> None:
    lot = await ensure_lot(conn, gtin=GTIN_A, lot_number="D1", expiry=None)
    await post(conn, [receive(lot, 4), put_away(lot, 4, T0)])
    await conn.commit()
    with pytest.raises(NotQuarantinedError):
        await dispose_lot(
            conn,
            lot_id=lot,
            decision="release",
            actor="qa1",
            reason="stable",
            effective_at=T0,
            signature_meaning="approved",
        )
    await conn.rollback()
    await quarantine_at_location(
        conn, location_id=FRIDGE, effective_at=T0, actor="rules", reason="hot", reference="ex-9"
    )
    await dispose_lot(
        conn,
        lot_id=lot,
        decision="release",
        actor="qa1",
        reason="within stability budget",
        effective_at=T0 + timedelta(hours=2),
        signature_meaning="approved for use",
    )
    await conn.commit()
    cur = await conn.execute(
        "SELECT actor, signature_meaning, to_status FROM ledger_entries WHERE movement='release'"
    )
    assert await cur.fetchall() == [("qa1", "approved for use", "released")]
    cur = await conn.execute("SELECT status FROM lots WHERE lot_id = %s", (lot,))
    assert await cur.fetchone() == ("released",)
    # released stock is usable: a new excursion quarantines it again
    moved = await quarantine_at_location(
        conn, location_id=FRIDGE, effective_at=T0, actor="rules", reason="hot", reference="ex-10"
    )
    assert moved == [lot]


async def test_stays_and_lots_at_location_follow_effective_time(
    conn: AsyncConnection[TupleRow],
) -> None:
    lot = await ensure_lot(conn, gtin=GTIN_A, lot_number="S1", expiry=None)
    t1, t2, t3 = (T0 + timedelta(hours=h) for h in (1, 2, 3))
    move = Draft(
        Movement.MOVE, lot, 6, t3, "op", frm=Place(FRIDGE, AVAIL), to=Place(FRIDGE_2, AVAIL)
    )
    await post(conn, [receive(lot, 6), put_away(lot, 6, t1), move])
    await conn.commit()
    stays = [(s.location_id, s.start, s.end) for s in await lot_stays(conn, lot)]
    assert stays == [(DOCK, T0, t1), (FRIDGE, t1, t3), (FRIDGE_2, t3, None)]
    assert await lots_at_location(conn, FRIDGE, t2) == [lot]
    assert await lots_at_location(conn, FRIDGE, t3) == []
    assert await lots_at_location(conn, FRIDGE_2, t2) == []


async def test_serialized_units_follow_whole_balance_moves_and_refuse_partial(
    conn: AsyncConnection[TupleRow],
) -> None:
    lot = await ensure_lot(conn, gtin=GTIN_A, lot_number="U1", expiry=None)
    epcs = [f"urn:epc:id:sgtin:0614141.112345.{n}" for n in range(3)]
    await register_units(conn, [NewUnit(e, "sgtin", lot, None) for e in epcs])
    await post(conn, [receive(lot, 1, epc=e) for e in epcs])
    await conn.commit()
    issue = Draft(Movement.ISSUE, lot, 1, T0, "op", frm=Place(FRIDGE, AVAIL), epc_uri=epcs[0])
    with pytest.raises(InsufficientBalanceError, match="is at"):
        await post(conn, [issue])
    await conn.rollback()
    with pytest.raises(InvalidMovementError, match="serialized"):
        await post(conn, [put_away(lot, 2, T0)])
    await conn.rollback()
    await quarantine_at_location(
        conn, location_id=DOCK, effective_at=T0, actor="r", reason="hot", reference="ex-2"
    )
    await conn.commit()
    cur = await conn.execute("SELECT DISTINCT location_id, status FROM units")
    assert await cur.fetchall() == [(DOCK, "quarantined")]
    with pytest.raises(InsufficientBalanceError, match="is at"):
        await post(conn, [receive(lot, 1, epc=epcs[0])])
    await conn.rollback()


async def test_concurrent_writers_chain_in_one_total_order(database_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(database_url) as setup:
        await seed(setup)
        lot = await ensure_lot(setup, gtin=GTIN_A, lot_number="C1", expiry=None)
        await setup.commit()

    async def writer() -> None:
        async with await psycopg.AsyncConnection.connect(database_url) as c:
            for _ in range(15):
                await post(c, [receive(lot, 1), receive(lot, 2)])
                await c.commit()

    async with asyncio.TaskGroup() as tg:
        for _ in range(4):
            tg.create_task(writer())
    async with await psycopg.AsyncConnection.connect(database_url) as c:
        report = await verify(c)
        assert report.ok, report
        assert report.entries == 120
        assert await balances(c) == {(lot, DOCK, "available", 180)}
