"""Scenario: a transfer from the warehouse to a second site in a simulated refrigerated truck.

The truck (simulators.thermal.truck_trip) makes two delivery stops and its reefer unit fails
on the way; the data logger travelling with the pallet is read out on arrival as a generic CSV
file and imported; the receiving door then receives the pallet out of transit, quarantined.
The same trip with a working reefer arrives available.
"""

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
from cloud.transfers.dispatch import dispatch
from cloud.transfers.imports import import_samples
from cloud.transfers.logger_files import parse_generic
from cloud.transfers.loggers import attach
from cloud.transfers.store import create_transfer, get_transfer
from protocols.gs1.epc import encode_sscc96
from protocols.records import Direction
from simulators.thermal import Stop, truck_trip
from tests.support.ledger_seed import DOCK, seed
from tests.support.transfers_seed import (
    DOCK_2,
    PALLET,
    T0,
    Doors,
    add_second_site,
    balances,
    order,
    stock_in,
    supplier_asn,
)

pytestmark = pytest.mark.integration

SHIPPED = T0 + timedelta(hours=1)
TRIP = timedelta(hours=5)


@pytest.fixture
async def loaded(timescale_url: str) -> AsyncIterator[tuple[AsyncConnection[TupleRow], Doors]]:
    async with await psycopg.AsyncConnection.connect(timescale_url) as c:
        await seed(c)
        await add_second_site(c, "Hospital site")
        await c.execute("UPDATE storage_profiles SET on_delay = '15 minutes'")
        await create_asn(c, AsnIn.model_validate(supplier_asn()))
        doors = Doors(c)
        await stock_in(c, doors)
        tid = await create_transfer(c, order())
        await c.commit()
        await doors.passage(DOCK, Direction.OUTBOUND, [encode_sscc96(PALLET, 7)], T0)
        t = await get_transfer(c, tid)
        assert t is not None
        await dispatch(c, t, SHIPPED)
        t = await get_transfer(c, tid)
        assert t is not None
        await attach(c, t, "LOGGER-7", "logger")
        await c.commit()
        yield c, doors


def logger_csv(*, reefer_fails: bool) -> str:
    stops = (Stop(timedelta(hours=1), timedelta(minutes=5)), Stop(timedelta(hours=3),
             timedelta(minutes=5)))  # fmt: skip
    samples = truck_trip(
        start=SHIPPED, duration=TRIP, stops=stops, seed=3,
        reefer_failure_at=timedelta(hours=2) if reefer_fails else None,
    )  # fmt: skip
    rows = [f"{s.time.isoformat()},{s.value}" for s in samples if s.value is not None]
    return "time,celsius\n" + "\n".join(rows) + "\n"


@pytest.mark.parametrize("reefer_fails", [True, False])
async def test_truck_trip_excursion_quarantines_on_receipt(
    loaded: tuple[AsyncConnection[TupleRow], Doors], reefer_fails: bool
) -> None:
    conn, doors = loaded
    arrival = SHIPPED + TRIP
    got = await import_samples(
        conn, "LOGGER-7", parse_generic(logger_csv(reefer_fails=reefer_fails)), arrival
    )
    assert got.verdict is not None
    assert bool(got.verdict.action) is reefer_fails
    await conn.commit()
    receipt = await doors.passage(
        DOCK_2, Direction.INBOUND, [encode_sscc96(PALLET, 7)], arrival + timedelta(minutes=10)
    )
    assert receipt["outcome"] == "complete"
    status = "quarantined" if reefer_fails else "available"
    assert {("L1", DOCK_2, status, 3), ("B7", DOCK_2, status, 12)} <= await balances(conn)
    assert (await verify(conn)).ok
