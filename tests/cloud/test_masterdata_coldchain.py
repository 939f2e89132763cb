"""A site set up only through the API is judged by the cold-chain step (no SQL seeding).

Site, fridge with the refrigerated profile, sensor mount, product and lot go through
``/v1/...``; stock is received through the ledger API; readings go through the real ingest
writer and processor (``tests.support.coldchain_seed.Site``).
"""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest

from cloud.auth.model import Role
from cloud.ingest.auth import add_gateway
from cloud.storage.database import make_pool
from tests.support.coldchain_seed import T0, Site, readings
from tests.support.ledger_api import api

pytestmark = pytest.mark.integration

GTIN = "09506000134352"
FRIDGE = "ward-fridge"
SENSOR = "ward-fridge/t"


async def test_sensor_mounted_through_the_api_is_judged_and_its_lot_quarantined(
    timescale_url: str,
) -> None:
    async with api(timescale_url) as a:
        admin = a.as_(Role.ADMIN) | {"X-Coldtrace-Reason": "new ward"}
        puts = [
            ("/v1/sites/ward", {"name": "Ward 4 pharmacy", "timezone": "Europe/Berlin"}),
            (f"/v1/locations/{FRIDGE}", {"site_id": "ward", "kind": "fridge",
             "name": "Ward fridge", "profile_id": "std-refrigerated"}),
            (f"/v1/sensors/{SENSOR}", {"location_id": FRIDGE,
             "mounted_at": (T0 - timedelta(days=1)).isoformat()}),
            (f"/v1/products/{GTIN}", {"name": "Vaccine", "profile_id": "std-refrigerated",
             "stability_budget": "PT2H"}),
        ]  # fmt: skip
        for path, body in puts:
            r = await a.client.put(path, json=body, headers=admin)
            assert r.status_code == 201, (path, r.text)
        lot = await a.client.post(
            "/v1/lots", json={"gtin": GTIN, "lot_number": "W1", "expiry": None}, headers=admin
        )
        assert lot.status_code == 201, lot.text
        lot_id = lot.json()["lot_id"]
        received = await a.client.post(
            "/v1/ledger/movements",
            json={"movement": "receive", "lot_id": lot_id, "quantity": 20, "reason": "delivery",
                  "to_location": FRIDGE, "to_status": "available",
                  "effective_at": (T0 - timedelta(hours=1)).isoformat()},
            headers=a.as_(Role.OPERATOR),
        )  # fmt: skip
        assert received.status_code == 201, received.text

        async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
            await add_gateway(conn, "cc-gw", "ward")
            await conn.commit()
        async with make_pool(timescale_url, max_size=4) as pool:
            site = Site(timescale_url, pool, {"w1": lot_id})
            # 9 °C for 30 minutes: past the refrigerated profile's 8 °C action limit and on-delay
            await site.send(readings(SENSOR, T0, [5.0] * 10 + [9.0] * 30 + [5.0] * 20))
            found = await site.rows(
                "SELECT location_id, kind, level, profile_id FROM excursions WHERE sensor_id = %s",
                SENSOR,
            )
            assert found == [(FRIDGE, "high", "action", "std-refrigerated")]

        held = await a.client.get(
            "/v1/lots", params={"status": "quarantined"}, headers=a.as_(Role.QA)
        )
        assert [x["lot_number"] for x in held.json()] == ["W1"]
