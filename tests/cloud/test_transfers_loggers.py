"""Shipment loggers: file formats, live trackers quarantining at once, late files after receipt,
and the transit in the lots' exposure (unknown where no logger covers it)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg
import pytest
from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from cloud.coldchain.exposure import lot_exposure
from cloud.epcis.export import Query, export
from cloud.receiving.asn import AsnIn
from cloud.receiving.store import create_asn
from cloud.transfers import LoggerFileError, TransferRejectedError
from cloud.transfers.dispatch import dispatch
from cloud.transfers.imports import import_samples
from cloud.transfers.logger_files import parse_generic, parse_logtag
from cloud.transfers.loggers import Sample, attach
from cloud.transfers.store import create_transfer, get_transfer
from protocols.gs1.epc import encode_sscc96
from protocols.records import Direction
from tests.cloud.test_epcis_export import VALIDATOR
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

SHIPPED = T0 + timedelta(hours=3)


def test_generic_csv_refuses_a_bad_row_by_line() -> None:
    with pytest.raises(LoggerFileError, match="line 3: celsius 'warm' is not a number"):
        parse_generic("time,celsius\n2026-03-01T08:00:00Z,4\n2026-03-01T08:05:00Z,warm\n")
    with pytest.raises(LoggerFileError, match=r"line 2: .* has no UTC offset"):
        parse_generic("time,celsius\n2026-03-01T08:00:00,4\n")
    with pytest.raises(LoggerFileError, match="header needs"):
        parse_generic("when,temp\n")
    got = parse_generic("time,celsius,latitude,longitude\n2026-03-01T09:00:00+01:00,5,48.85,2.35\n")
    assert got[0].time == datetime(2026, 3, 1, 8, tzinfo=UTC)
    assert (got[0].latitude, got[0].longitude) == (48.85, 2.35)


def test_logtag_export_in_local_time_day_first() -> None:
    doc = (
        "LogTag Analyzer\nSerial Number,1004123456\nUser ID,TR-1\n\n"
        "Date,Time,Temperature (°C)\n01/03/2026,09:00:00,4.5\n01/03/2026,09:10:00,5.5\n"
    )
    f = parse_logtag(doc, zone=ZoneInfo("Europe/Paris"), dayfirst=True)
    assert f.serial == "1004123456"
    assert [(s.time, s.celsius) for s in f.samples] == [
        (datetime(2026, 3, 1, 8, 0, tzinfo=UTC), 4.5),
        (datetime(2026, 3, 1, 8, 10, tzinfo=UTC), 5.5),
    ]
    with pytest.raises(LoggerFileError, match="line 7: date and time"):
        parse_logtag(doc.replace("01/03/2026,09:10", "31/02/2026,09:10"), zone=ZoneInfo("UTC"),
                     dayfirst=True)  # fmt: skip
    with pytest.raises(LoggerFileError, match="no data table"):
        parse_logtag("Serial Number,1\n", zone=ZoneInfo("UTC"), dayfirst=True)


@pytest.fixture
async def shipped(timescale_url: str) -> AsyncIterator[tuple[AsyncConnection[TupleRow], Doors]]:
    """Transfer TR-1 loaded (the pallet in transit) and dispatched at SHIPPED, logger TT-1."""
    async with await psycopg.AsyncConnection.connect(timescale_url) as c:
        await seed(c)
        await add_second_site(c)
        await create_asn(c, AsnIn.model_validate(supplier_asn()))
        doors = Doors(c)
        await stock_in(c, doors)
        tid = await create_transfer(c, order())
        await c.commit()
        got = await doors.passage(DOCK, Direction.OUTBOUND, [encode_sscc96(PALLET, 7)], T0)
        assert got["outcome"] == "complete"
        t = await get_transfer(c, tid)
        assert t is not None
        await dispatch(c, t, SHIPPED)
        t = await get_transfer(c, tid)
        assert t is not None
        await attach(c, t, "TT-1", "tracker")
        await c.commit()
        yield c, doors


def trip(minutes: int, warm: range = range(0)) -> list[Sample]:
    return [
        Sample(SHIPPED + timedelta(minutes=m), 12.0 if m in warm else 5.0, 47.0, 8.0)
        for m in range(0, minutes, 5)
    ]


async def test_live_tracker_excursion_quarantines_in_transit_at_once(
    shipped: tuple[AsyncConnection[TupleRow], Doors],
) -> None:
    conn, doors = shipped
    clean = await import_samples(conn, "TT-1", trip(30), SHIPPED + timedelta(minutes=30))
    assert (clean.stored, clean.quarantined_lots) == (6, [])
    hot = await import_samples(
        conn, "TT-1", trip(90, range(30, 90)), SHIPPED + timedelta(minutes=90)
    )
    assert hot.stored == 12
    assert len(hot.quarantined_lots) == 2
    await conn.commit()
    transit = "transit:TR-1"
    assert await balances(conn) == {
        ("L0", DOCK, "available", 2), ("L1", transit, "quarantined", 3),
        ("B7", transit, "quarantined", 12),
    }  # fmt: skip
    cur = await conn.execute("SELECT count(*) FROM shipment_positions")
    assert await cur.fetchone() == (18,)
    # arrival: received out of transit, still quarantined
    got = await doors.passage(
        DOCK_2, Direction.INBOUND, [encode_sscc96(PALLET, 7)], SHIPPED + timedelta(hours=2)
    )
    assert got["outcome"] == "complete"
    assert ("L1", DOCK_2, "quarantined", 3) in await balances(conn)
    with pytest.raises(TransferRejectedError, match="no dispatched shipment carries"):
        await import_samples(conn, "TT-other", trip(10), SHIPPED)


async def test_file_read_after_receipt_still_quarantines_and_gaps_are_unknown(
    shipped: tuple[AsyncConnection[TupleRow], Doors],
) -> None:
    conn, doors = shipped
    arrived = SHIPPED + timedelta(hours=3)
    got = await doors.passage(DOCK_2, Direction.INBOUND, [encode_sscc96(PALLET, 7)], arrived)
    assert got["outcome"] == "complete"
    assert ("L1", DOCK_2, "available", 3) in await balances(conn)
    # the logger covered only the first two hours of three, warm in the second
    late = await import_samples(conn, "TT-1", trip(120, range(60, 120)), arrived)
    assert late.verdict is not None
    # the last reading (at 115 min) is not held over the 65 silent minutes: all unknown
    assert late.verdict.unknown == timedelta(minutes=65)
    assert len(late.quarantined_lots) == 2
    await conn.commit()
    assert ("L1", DOCK_2, "quarantined", 3) in await balances(conn)
    cur = await conn.execute("SELECT lot_id FROM lots WHERE lot_number = 'L1'")
    row = await cur.fetchone()
    assert row is not None
    exp = await lot_exposure(
        conn, int(row[0]), now=arrived + timedelta(hours=1), bucket=timedelta(hours=1)
    )
    assert exp is not None
    assert "transit:TR-1" in [s.location_id for s in exp.stays]
    # the time without logger data in transit is unknown in the lot's exposure too
    assert exp.exposure.budget.unknown >= timedelta(minutes=65)
    assert exp.exposure.budget.out_of_range >= timedelta(minutes=45)


async def test_epcis_shipping_and_receiving_carry_the_transit_loggers(
    shipped: tuple[AsyncConnection[TupleRow], Doors],
) -> None:
    conn, doors = shipped
    await import_samples(conn, "TT-1", trip(60), SHIPPED + timedelta(hours=1))
    await conn.commit()
    await doors.passage(
        DOCK_2, Direction.INBOUND, [encode_sscc96(PALLET, 7)], SHIPPED + timedelta(hours=2)
    )
    doc = await export(conn, Query(since=T0 - timedelta(days=1), until=T0 + timedelta(days=1)))
    VALIDATOR.validate(doc)
    events = doc["epcisBody"]["eventList"]
    shipping = [e for e in events if e.get("bizStep") == "shipping"]
    receiving = [e for e in events if e.get("sensorElementList")]
    assert len(shipping) == 1
    assert shipping[0]["disposition"] == "in_transit"
    assert shipping[0]["sourceList"] == [
        {"type": "location", "source": "urn:coldtrace:location:dock-1"}
    ]
    assert shipping[0]["bizTransactionList"][0]["bizTransaction"] == "urn:coldtrace:desadv:TR-1"
    assert len(receiving) == 1
    report = receiving[0]["sensorElementList"][0]["sensorReport"][0]
    assert (report["minValue"], report["maxValue"], report["uom"]) == (5.0, 5.0, "CEL")
    assert receiving[0]["destinationList"][0]["destination"] == "urn:coldtrace:location:dock-2"
