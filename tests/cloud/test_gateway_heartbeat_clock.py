"""A heartbeat measures the gateway's clock as a batch does: ``GET /v1/gateways`` and the alarm
``clock_skew`` see an idle gateway's skew, and a later good heartbeat sets it right again."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import httpx
import pytest
from pydantic import TypeAdapter

from cloud.alarms.conditions import detect_conditions
from cloud.alarms.settings import AlarmSettings
from protocols.batch import Batch, Sequenced
from protocols.records import Reading
from tests.support.cloud_ingest import Gateway, app_client, create_gateway, post, viewer_headers
from tests.support.coldchain_seed import FRIDGE_A, SENSOR, SITE, Site

pytestmark = pytest.mark.integration

AHEAD = timedelta(minutes=10)
# Runs an hour apart (one alarm per gateway and hour), all within the window.
SETTINGS = AlarmSettings(clock_skew_window=timedelta(hours=3))
Skew = TypeAdapter(timedelta)


@pytest.fixture
async def client(site: Site) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(site.url, alarms={"run_worker": False}) as c:
        yield c


async def beat(client: httpx.AsyncClient, gateway: Gateway, sent_at: datetime) -> None:
    answer = await client.post(
        "/v1/gateway/heartbeat", headers=gateway.headers,
        json={"interval_seconds": 60, "sent_at": sent_at.isoformat()},
    )  # fmt: skip
    assert answer.status_code == 204, answer.text


async def skews(client: httpx.AsyncClient, viewer: dict[str, str]) -> dict[str, timedelta]:
    listed = await client.get("/v1/gateways", headers=viewer)
    assert listed.status_code == 200, listed.text
    return {
        g["gateway_id"]: Skew.validate_python(g["clock_skew"])
        for g in listed.json()
        if g["clock_skew"] is not None
    }


async def skew_alarms(site: Site, at: datetime) -> dict[str, tuple[str, str, object]]:
    """Runs the condition job at ``at``; the clock_skew alerts it raised, by gateway."""
    async with site.pool.connection() as conn:
        await detect_conditions(conn, at, SETTINGS)
    rows = await site.rows(
        "SELECT detail->>'gateway_id', message, dedup_key, detail->>'site_id' FROM alerts"
        " WHERE kind = 'clock_skew' AND at = %s",
        at,
    )
    return {str(r[0]): (str(r[1]), str(r[2]), r[3]) for r in rows}


async def test_a_heartbeat_ahead_shows_and_alarms_as_a_batch_would(
    site: Site, client: httpx.AsyncClient
) -> None:
    viewer = await viewer_headers(site.url)
    idle = await create_gateway(site.url, "gw-idle", SITE)  # only beats
    busy = await create_gateway(site.url, "gw-busy", SITE)  # sends a batch
    sent = datetime.now(UTC) + AHEAD
    await beat(client, idle, sent)
    reading = Reading(sensor_id=SENSOR[FRIDGE_A], time=datetime.now(UTC), value=5.0,
                      received_at=sent)  # fmt: skip
    batch = Batch(gateway_id="gw-busy", boot_id=uuid4(), sent_at=sent,
                  records=[Sequenced(seq=1, record=reading)])  # fmt: skip
    stored = await post(client, busy, batch)
    assert stored.status_code == 200, stored.text

    shown = await skews(client, viewer)
    for gateway_id in ("gw-idle", "gw-busy"):
        assert AHEAD - timedelta(seconds=10) < shown[gateway_id] <= AHEAD, shown

    now = datetime.now(UTC)
    raised = await skew_alarms(site, now)
    assert set(raised) == {"gw-idle", "gw-busy"}
    hour = now.strftime("%Y-%m-%dT%H")
    for gateway_id, (message, key, site_id) in raised.items():
        assert message == f"gateway {gateway_id}'s clock runs 10 min ahead of the cloud's"
        assert key == f"clock_skew:gateway:{gateway_id}:{hour}"
        assert site_id == SITE
    assert await skew_alarms(site, now + timedelta(minutes=1)) in ({}, raised)  # once an hour

    # Nothing new from the idle gateway: its last heartbeat's skew is judged again an hour on.
    assert "gw-idle" in await skew_alarms(site, now + timedelta(hours=1))
    # A good heartbeat sets its clock right, on the list and for the alarm.
    await beat(client, idle, datetime.now(UTC))
    assert abs((await skews(client, viewer))["gw-idle"]) < timedelta(seconds=10)
    assert "gw-idle" not in await skew_alarms(site, now + timedelta(hours=2))


async def test_a_batch_after_a_heartbeat_measures_the_clock_again(
    site: Site, client: httpx.AsyncClient
) -> None:
    viewer = await viewer_headers(site.url)
    gateway = await create_gateway(site.url, "gw-both", SITE)
    await beat(client, gateway, datetime.now(UTC) + AHEAD)
    assert (await skews(client, viewer))["gw-both"] > AHEAD - timedelta(seconds=10)
    now = datetime.now(UTC)
    reading = Reading(sensor_id=SENSOR[FRIDGE_A], time=now, value=5.0, received_at=now)
    batch = Batch(gateway_id="gw-both", boot_id=uuid4(), sent_at=now,
                  records=[Sequenced(seq=1, record=reading)])  # fmt: skip
    assert (await post(client, gateway, batch)).status_code == 200
    assert abs((await skews(client, viewer))["gw-both"]) < timedelta(seconds=10)


async def test_the_clock_is_rewritten_only_when_it_moved_or_the_measure_is_old(
    site: Site, client: httpx.AsyncClient
) -> None:
    """Every batch would otherwise rewrite the gateway's row: a steady clock is measured again
    after 30 s, a clock that moved by more than a second at once."""
    gateway = await create_gateway(site.url, "gw-steady", SITE)

    async def measured() -> tuple[object, object]:
        [row] = await site.rows(
            "SELECT clock_received_at, xmin::text FROM gateways WHERE gateway_id = 'gw-steady'"
        )
        return row[0], row[1]

    await beat(client, gateway, datetime.now(UTC))
    first = await measured()
    await beat(client, gateway, datetime.now(UTC))  # the same skew, a moment later
    assert await measured() == first  # the row was not written again
    await beat(client, gateway, datetime.now(UTC) + timedelta(seconds=5))  # the clock stepped
    stepped = await measured()
    assert stepped != first
    await site.rows(
        "UPDATE gateways SET clock_received_at = clock_received_at - interval '31 seconds',"
        " clock_sent_at = clock_sent_at - interval '31 seconds' WHERE gateway_id = 'gw-steady'"
        " RETURNING 1"
    )
    old = await measured()
    await beat(client, gateway, datetime.now(UTC) + timedelta(seconds=5))  # steady, but 31 s old
    assert await measured() != old
