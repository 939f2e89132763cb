"""Device lists are bounded by the request (issue 12.2): a gateway creates a device row for every
new id it names (up to 10,000 a batch, without limit over batches), so ``GET /v1/devices`` and
the admin pages' device lists cannot answer "all of them"."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from cloud.admin.queries import LISTED_DEVICES, readers, unmounted_sensors
from protocols.records import Reading, Record
from tests.cloud.test_site_scope import batch, process
from tests.support.cloud_ingest import app_client, create_gateway, post, viewer_headers

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=0)
FLOOD = 2_400


async def test_a_gateway_naming_thousands_of_new_sensors_cannot_make_device_lists_unbounded(
    timescale_url: str,
) -> None:
    url = timescale_url
    async with await psycopg.AsyncConnection.connect(url) as conn:
        await conn.execute("INSERT INTO sites (site_id, name) VALUES ('site-f', 'Flooded')")
        await conn.commit()
    gw = await create_gateway(url, "gw-flood", "site-f")
    at = NOW - timedelta(minutes=10)
    flood: list[Record] = [
        Reading(sensor_id=f"fake-{i:05d}", time=at, value=5.0, received_at=at) for i in range(FLOOD)
    ]
    async with app_client(url) as client:
        sent = await post(client, gw, batch(gw, flood))
        assert sent.status_code == 200, sent.text
        await process(url)
        viewer = await viewer_headers(url)
        pages: list[list[str]] = []
        after: str | None = None
        while len(pages) < 5:
            params: dict[str, str | int] = {"device_type": "sensor", "limit": 1000}
            if after is not None:
                params["after"] = after
            page = await client.get("/v1/devices", params=params, headers=viewer)
            assert page.status_code == 200, page.text
            pages.append([d["device_id"] for d in page.json()])
            if len(pages[-1]) < 1000:
                break
            after = pages[-1][-1]
        too_many = await client.get("/v1/devices", params={"limit": 10_001}, headers=viewer)
        whole = await client.get("/v1/devices", headers=viewer)
    assert [len(p) for p in pages] == [1000, 1000, FLOOD - 2000]
    listed = [d for p in pages for d in p]
    assert listed == sorted(listed)
    assert len(set(listed)) == FLOOD
    assert too_many.status_code == 422
    assert whole.status_code == 200
    assert len(whole.json()) == FLOOD  # under the cap, the default page is all of them
    async with await psycopg.AsyncConnection.connect(url) as conn:
        assert len(await unmounted_sensors(conn)) == LISTED_DEVICES
        assert await readers(conn) == []
