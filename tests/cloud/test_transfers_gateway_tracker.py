"""A live tracker read by a gateway (a truck's, over MQTT) under its own sensor id: its readings
come through ingest and the processor's cold-chain step, which judges them at the shipment's
transit location and quarantines what is in transit at once."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest

from cloud.ledger.core import Draft, Movement, Place, Status
from cloud.ledger.service import post
from cloud.transfers.loggers import attach, judge_transfer
from cloud.transfers.store import TransferIn, create_transfer, get_transfer
from tests.support.coldchain_seed import FRIDGE_B, GTIN_VACCINE, SITE, T0, Site, readings

pytestmark = pytest.mark.integration


async def test_tracker_through_a_gateway_quarantines_in_transit(site: Site) -> None:
    async with await psycopg.AsyncConnection.connect(site.url) as conn:
        await conn.execute("INSERT INTO sites (site_id, name) VALUES ('cc-site-2', 'Two')")
        tid = await create_transfer(
            conn,
            TransferIn.model_validate(
                {
                    "reference": "TR-T", "from_site": SITE, "to_site": "cc-site-2",
                    "lines": [{"gtin": GTIN_VACCINE, "lot": "B1", "quantity": 10}],
                }
            ),
        )  # fmt: skip
        t = await get_transfer(conn, tid)
        assert t is not None
        shipped = T0 + timedelta(minutes=5)
        here, moving = Place(FRIDGE_B, Status.AVAILABLE), Place("transit:TR-T", Status.AVAILABLE)
        await post(
            conn,
            [Draft(Movement.MOVE, site.lots["b1"], 10, shipped, "door", frm=here, to=moving,
                   reference="transfer:TR-T")],
        )  # fmt: skip
        await conn.execute(
            "UPDATE transfers SET status = 'in_transit', shipped_at = %s WHERE transfer_id = %s",
            (shipped, tid),
        )
        await attach(conn, t, "TRK-9", "tracker", via_gateway=shipped)
        await conn.commit()
    # the truck's gateway sends the tracker's readings: 5 °C, then 9 °C for 40 minutes
    values = [5.0] * 10 + [9.0] * 40
    await site.send(readings("TRK-9", shipped, values))
    rows = await site.rows(
        "SELECT location_id, status, quantity FROM balances WHERE lot_id = %s AND quantity > 0",
        site.lots["b1"],
    )
    assert rows == [("transit:TR-T", "quarantined", 10)]
    rows = await site.rows("SELECT location_id, level FROM excursions WHERE sensor_id = 'TRK-9'")
    assert ("transit:TR-T", "action") in rows
    async with await psycopg.AsyncConnection.connect(site.url) as conn:
        t = await get_transfer(conn, tid)
        assert t is not None
        verdict = await judge_transfer(conn, t, until=shipped + timedelta(minutes=50))
    assert verdict is not None
    assert verdict.action
    assert verdict.unknown == timedelta(0)
