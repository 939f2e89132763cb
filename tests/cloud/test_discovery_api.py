"""Discovery against the real ingest, processor and database: a sensor and a reader that report
but are mounted nowhere are listed as unassigned, and one mount takes them off the list."""

from __future__ import annotations

from collections.abc import AsyncIterator

import psycopg
import pytest

from tests.support.gateway_config import REPORTED_AT, WHY, Commissioning, commissioning, report

pytestmark = pytest.mark.integration


@pytest.fixture
async def site(timescale_url: str) -> AsyncIterator[Commissioning]:
    async with commissioning(timescale_url) as c:
        yield c


async def unassigned(site: Commissioning) -> dict[str, dict[str, object]]:
    got = await site.client.get("/v1/discovery/unassigned", headers=site.viewer)
    assert got.status_code == 200, got.text
    return {row["device_id"]: row for row in got.json()}


async def test_reporting_devices_are_unassigned_until_mounted(site: Commissioning) -> None:
    await report(site)
    listed = await unassigned(site)
    assert set(listed) == {"probe-9", "reader-9"}
    assert listed["probe-9"]["device_type"] == "sensor"
    assert listed["probe-9"]["gateway_id"] == "gw-1"
    assert listed["probe-9"]["site_id"] == "site-1"
    assert listed["reader-9"]["device_type"] == "llrp_reader"

    mount = {
        "device_id": "probe-9",
        "location_id": "fridge-1",
        "mounted_at": REPORTED_AT.isoformat(),
    }
    refused = await site.client.post("/v1/discovery/mount", json=mount, headers=site.viewer)
    assert refused.status_code == 403
    done = await site.client.post("/v1/discovery/mount", json=mount, headers=site.admin | WHY)
    assert done.status_code == 200, done.text
    assert done.json()["device_type"] == "sensor"
    reader = {"device_id": "reader-9", "location_id": "dock-1"}
    done = await site.client.post("/v1/discovery/mount", json=reader, headers=site.admin | WHY)
    assert done.status_code == 200, done.text
    assert await unassigned(site) == {}

    sensors = await site.client.get("/v1/sensors", headers=site.viewer)
    assert {"sensor_id": "probe-9", "location_id": "fridge-1"}.items() <= next(
        s for s in sensors.json() if s["sensor_id"] == "probe-9"
    ).items()
    async with await psycopg.AsyncConnection.connect(site.url) as conn:
        cur = await conn.execute(
            "SELECT action, subject, reason FROM audit_log WHERE action LIKE '%%.mount'"
            " ORDER BY audit_id"
        )
        rows = await cur.fetchall()
    assert rows == [
        ("sensor.mount", "sensor:probe-9", "commissioning"),
        ("reader.mount", "reader:reader-9", "commissioning"),
    ]


async def test_mounting_what_never_reported_or_nowhere_is_refused(site: Commissioning) -> None:
    await report(site)
    admin = site.admin | WHY
    cases = [
        ({"device_id": "ghost", "location_id": "fridge-1"}, 404),
        ({"device_id": "probe-9", "location_id": "no-such-place"}, 422),
        ({"device_id": "reader-9", "location_id": "no-such-place"}, 422),
    ]
    for body, code in cases:
        answer = await site.client.post("/v1/discovery/mount", json=body, headers=admin)
        assert answer.status_code == code, (body, answer.text)
    assert set(await unassigned(site)) == {"probe-9", "reader-9"}
