"""The transfers HTTP API: order, FEFO picks, shelf-life rules, loggers, dispatch refusals."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime

import psycopg
import pytest

from cloud.auth.model import Role
from cloud.ledger.core import Draft, Movement, Place, Status
from cloud.ledger.service import ensure_lot, post
from tests.support.ledger_api import Api, api
from tests.support.ledger_seed import FRIDGE, FRIDGE_2, GTIN_A, SITE

pytestmark = pytest.mark.integration


@pytest.fixture
async def client(timescale_url: str) -> AsyncIterator[Api]:
    async with api(timescale_url) as a:
        async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
            await conn.execute("INSERT INTO sites (site_id, name) VALUES ('site-2', 'Two')")
            at = datetime(2026, 3, 1, tzinfo=UTC)
            for lot, expiry, loc, qty in (
                ("LATE", date(2028, 1, 1), FRIDGE, 50),
                ("SOON", date(2026, 5, 1), FRIDGE, 50),
                ("MID", date(2027, 1, 1), FRIDGE_2, 5),
            ):
                lot_id = await ensure_lot(conn, gtin=GTIN_A, lot_number=lot, expiry=expiry)
                await post(
                    conn,
                    [Draft(Movement.RECEIVE, lot_id, qty, at, "t",
                           to=Place(loc, Status.AVAILABLE))],
                )  # fmt: skip
            await conn.commit()
        yield a


ORDER = {
    "reference": "TR-API",
    "from_site": SITE,
    "to_site": "site-2",
    "lines": [{"gtin": GTIN_A, "quantity": 20}],
}


async def test_order_picks_and_shelf_life(client: Api) -> None:
    c, op, vw = client.client, client.as_(Role.OPERATOR), client.as_(Role.VIEWER)
    assert (await c.post("/v1/transfers", json=ORDER, headers=vw)).status_code == 403
    created = await c.post("/v1/transfers", json=ORDER, headers=op)
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["status"], body["transit_location_id"]) == ("open", "transit:TR-API")
    assert body["lines"] == [
        {"line_no": 1, "gtin": GTIN_A, "lot": None, "quantity": 20, "shipped": 0}
    ]
    tid = body["transfer_id"]
    picks = (await c.get(f"/v1/transfers/{tid}/picks?on=2026-03-02", headers=vw)).json()
    assert [(p["lot"], p["quantity"]) for p in picks["picks"]] == [
        ("SOON", 20)
    ]  # earliest expiry first
    rule = await c.put("/v1/shelf-life/site/site-2", json={"min_remaining_days": 180}, headers=op)
    assert rule.status_code == 200, rule.text
    picks = (await c.get(f"/v1/transfers/{tid}/picks?on=2026-03-02", headers=vw)).json()
    assert [(p["lot"], p["location_id"], p["quantity"]) for p in picks["picks"]] == [
        ("MID", FRIDGE_2, 5), ("LATE", FRIDGE, 15)
    ]  # fmt: skip
    assert [s["reason"] for s in picks["skipped"]] == ["short-dated: 60 days left, 180 required"]

    dup = await c.post("/v1/transfers", json=ORDER, headers=op)
    assert dup.status_code == 422
    assert "already exists" in dup.json()["detail"]
    both = {**ORDER, "reference": "TR-X", "customer": "Ward 3"}
    assert (await c.post("/v1/transfers", json=both, headers=op)).status_code == 422

    logger = await c.post(
        f"/v1/transfers/{tid}/loggers", json={"logger_id": "TT-9", "kind": "tracker"}, headers=op
    )
    assert logger.json() == {"sensor_id": "transit:TR-API:TT-9"}
    assert (await c.get(f"/v1/transfers/{tid}/transit", headers=vw)).json() is None
    empty = await c.post(f"/v1/transfers/{tid}/dispatch", headers=op)
    assert empty.status_code == 409
    assert "nothing is in transit" in empty.json()["detail"]
    assert (await c.get("/v1/transfers/999", headers=vw)).status_code == 404


async def test_logger_file_and_tracker_refusals(client: Api) -> None:
    c, op = client.client, client.as_(Role.OPERATOR)
    text = {**op, "Content-Type": "text/plain"}
    bad = await c.post(
        "/v1/shipment-loggers/import?format=csv&logger_id=TT-1",
        content=b"time,celsius\n2026-03-01T08:00:00Z,cold\n", headers=text,
    )  # fmt: skip
    assert bad.status_code == 422
    assert "line 2" in bad.json()["detail"]
    nobody = await c.post(
        "/v1/shipment-loggers/import?format=csv&logger_id=TT-1",
        content=b"time,celsius\n2026-03-01T08:00:00Z,4\n", headers=text,
    )  # fmt: skip
    assert nobody.status_code == 422
    assert "no dispatched shipment carries logger 'TT-1'" in nobody.json()["detail"]
    zone = await c.post(
        "/v1/shipment-loggers/import?format=logtag&zone=Mars/Base", content=b"x", headers=text
    )
    assert "unknown time zone" in zone.json()["detail"]
    live = await c.post(
        "/v1/trackers/TT-1/readings", json=[{"time": "2026-03-01T08:00:00", "celsius": 4}],
        headers=op,
    )  # fmt: skip
    assert live.status_code == 422


async def test_logtag_file_and_tracker_readings_over_http(client: Api, timescale_url: str) -> None:
    c, op, vw = client.client, client.as_(Role.OPERATOR), client.as_(Role.VIEWER)
    tid = (await c.post("/v1/transfers", json=ORDER, headers=op)).json()["transfer_id"]
    shipped = datetime(2026, 3, 2, 8, tzinfo=UTC)
    async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
        await conn.execute(
            "UPDATE transfers SET status = 'in_transit', shipped_at = %s WHERE transfer_id = %s",
            (shipped, tid),
        )
        await conn.commit()
    for logger, kind in (("1004123456", "logger"), ("TRK-1", "tracker")):
        got = await c.post(
            f"/v1/transfers/{tid}/loggers", json={"logger_id": logger, "kind": kind}, headers=op
        )
        assert got.status_code == 201, got.text
    rows = "".join(f"02/03/2026,09:{m:02d}:00,{5.0 if m < 30 else 9.5}\n" for m in range(0, 60, 5))
    doc = "Serial Number,1004123456\n\nDate,Time,Temperature (°C)\n" + rows
    got = await c.post(
        "/v1/shipment-loggers/import?format=logtag&zone=Europe/Paris&dayfirst=true",
        content=doc.encode(), headers={**op, "Content-Type": "text/plain"},
    )  # fmt: skip
    assert got.status_code == 200, got.text
    body = got.json()
    assert (body["reference"], body["stored"]) == ("TR-API", 12)
    assert body["transit"]["action_excursions"] == 1  # 9.5 °C for 30 min, profile on-delay 0
    live = await c.post(
        "/v1/trackers/TRK-1/readings",
        json=[{"time": "2026-03-02T08:10:00Z", "celsius": 4.2, "latitude": 47.1,
               "longitude": 8.5}],
        headers=op,
    )  # fmt: skip
    assert live.status_code == 200, live.text
    assert live.json()["stored"] == 1
    transit = (await c.get(f"/v1/transfers/{tid}/transit", headers=vw)).json()
    assert transit["action_excursions"] == 1
