"""Gateway contact and heartbeats (issue 14 item 3): every request with a gateway's token stamps
its contact, ``POST /v1/gateway/heartbeat`` keeps an idle gateway from being taken for offline,
and ``gateway_offline`` waits at least three of the gateway's heartbeat intervals."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from cloud.admin import queries as admin_queries
from cloud.alarms.conditions import detect_conditions
from cloud.alarms.settings import AlarmSettings
from cloud.alarms.store import claim_due_alarms
from tests.support.cloud_ingest import Gateway, app_client, create_gateway
from tests.support.coldchain_seed import SITE, Site

pytestmark = pytest.mark.integration

SETTINGS = AlarmSettings()  # gateway_offline_after: 10 minutes


@pytest.fixture
async def client(site: Site) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(site.url, alarms={"run_worker": False}) as c:
        yield c


async def beat(
    client: httpx.AsyncClient, gateway: Gateway | None, body: dict[str, Any] | None = None
) -> httpx.Response:
    sent = {"interval_seconds": 60, "sent_at": datetime.now(UTC).isoformat()}
    headers = {} if gateway is None else gateway.headers
    return await client.post("/v1/gateway/heartbeat", json=sent if body is None else body,
                             headers=headers)  # fmt: skip


async def contact(site: Site, gateway_id: str) -> tuple[Any, ...]:
    rows = await site.rows(
        "SELECT last_contact_at, heartbeat_interval FROM gateways WHERE gateway_id = %s",
        gateway_id,
    )
    return rows[0]


async def offline(site: Site, now: datetime) -> dict[str, str]:
    """Runs the condition job at ``now``; the gateway_offline alerts so far, by gateway."""
    async with site.pool.connection() as conn:
        await detect_conditions(conn, now, SETTINGS)
    rows = await site.rows(
        "SELECT detail->>'gateway_id', message FROM alerts WHERE kind = 'gateway_offline'"
        " AND detail->>'gateway_id' <> 'cc-gw'"  # the seeded gateway, silent all along
    )
    return {str(r[0]): str(r[1]) for r in rows}


async def registered_long_ago(site: Site, gateway_id: str) -> Gateway:
    gateway = await create_gateway(site.url, gateway_id, SITE)
    async with site.pool.connection() as conn:
        await conn.execute(
            "UPDATE gateways SET created_at = now() - interval '2 hours' WHERE gateway_id = %s",
            (gateway_id,),
        )
    return gateway


async def test_an_idle_gateway_that_beats_is_not_offline_until_it_stops(
    site: Site, client: httpx.AsyncClient
) -> None:
    idle = await registered_long_ago(site, "gw-idle")
    await registered_long_ago(site, "gw-silent")  # no batch, no heartbeat
    slow = await registered_long_ago(site, "gw-slow")  # beats once an hour
    assert (await beat(client, idle)).status_code == 204
    hourly = {"interval_seconds": 3600, "sent_at": datetime.now(UTC).isoformat()}
    assert (await beat(client, slow, hourly)).status_code == 204
    assert (await contact(site, "gw-idle"))[1] == timedelta(seconds=60)
    assert (await contact(site, "gw-slow"))[1] == timedelta(hours=1)
    now = datetime.now(UTC)

    # Nothing stored by either, ever: only the one that said nothing at all is offline.
    first = await offline(site, now + timedelta(minutes=5))
    assert set(first) == {"gw-silent"}
    assert "has not been in contact since" in first["gw-silent"]
    # The heartbeats stop: ten minutes on (more than 3 × 60 s) the idle one is offline, and
    # the one beating hourly is given three hours.
    assert set(await offline(site, now + timedelta(minutes=11))) == {"gw-silent", "gw-idle"}
    assert "gw-slow" not in await offline(site, now + timedelta(hours=2, minutes=59))
    assert "gw-slow" in await offline(site, now + timedelta(hours=3, minutes=1))
    # Raised once per silence, however often the job runs.
    counted = await site.rows(
        "SELECT detail->>'gateway_id', count(*) FROM alerts WHERE kind = 'gateway_offline'"
        " AND detail->>'gateway_id' <> 'cc-gw' GROUP BY 1 ORDER BY 1"
    )
    assert counted == [("gw-idle", 1), ("gw-silent", 1), ("gw-slow", 1)]


async def test_a_heartbeat_after_the_alarm_clears_it(site: Site, client: httpx.AsyncClient) -> None:
    gateway = await registered_long_ago(site, "gw-back")
    now = datetime.now(UTC)
    assert set(await offline(site, now)) == {"gw-back"}
    due = await _due(site, now + timedelta(seconds=1))
    assert due == {"gateway_offline": False}
    assert (await beat(client, gateway)).status_code == 204  # in contact after the alarm
    assert await _due(site, datetime.now(UTC) + timedelta(seconds=1)) == {"gateway_offline": True}


async def _due(site: Site, at: datetime) -> dict[str, bool]:
    async with site.pool.connection() as conn, conn.transaction():
        return {a.kind: a.cleared for a in await claim_due_alarms(conn, at, 50)}


async def test_every_gateway_route_stamps_the_contact_at_most_every_30_s(
    site: Site, client: httpx.AsyncClient
) -> None:
    gateway = await create_gateway(site.url, "gw-poll", SITE)
    assert await contact(site, "gw-poll") == (None, None)
    polled = await client.get("/v1/gateway/config", headers=gateway.headers)
    assert polled.status_code == 200, polled.text
    stamped = (await contact(site, "gw-poll"))[0]
    assert stamped is not None
    assert abs(datetime.now(UTC) - stamped) < timedelta(seconds=30)
    assert (await beat(client, gateway)).status_code == 204
    assert (await contact(site, "gw-poll"))[0] == stamped  # fresh: not written again
    async with site.pool.connection() as conn:
        await conn.execute(
            "UPDATE gateways SET last_contact_at = now() - interval '31 seconds'"
            " WHERE gateway_id = 'gw-poll'"
        )
    assert (await beat(client, gateway)).status_code == 204
    assert (await contact(site, "gw-poll"))[0] > stamped
    # The admin page's "last seen" is the last contact, not only the last batch.
    async with site.pool.connection() as conn:
        listed = {g.gateway_id: g for g in await admin_queries.gateways(conn)}
    assert listed["gw-poll"].last_seen == (await contact(site, "gw-poll"))[0]


async def test_the_heartbeat_takes_a_gateway_token_and_a_bounded_body(
    site: Site, client: httpx.AsyncClient
) -> None:
    gateway = await create_gateway(site.url, "gw-hb", SITE)
    assert (await beat(client, None)).status_code == 401
    assert (await beat(client, Gateway("gw-hb", "junk"))).status_code == 401
    user = await client.post(
        "/v1/gateway/heartbeat",
        json={"interval_seconds": 60, "sent_at": datetime.now(UTC).isoformat()},
        headers={"Authorization": "Basic Z3c6eA=="},
    )
    assert user.status_code == 401
    assert await contact(site, "gw-hb") == (None, None)  # refused callers stamp nothing
    sent_at = datetime.now(UTC).isoformat()
    refused: list[dict[str, Any]] = [
        {"interval_seconds": 9, "sent_at": sent_at},
        {"interval_seconds": 3601, "sent_at": sent_at},
        {"interval_seconds": 60},
        {"interval_seconds": 60, "sent_at": "2026-01-01T00:00:00"},  # no time zone
        {"interval_seconds": 60, "sent_at": sent_at, "extra": 1},
    ]
    for body in refused:
        answer = await beat(client, gateway, body)
        assert answer.status_code == 422, (body, answer.text)
    assert (await contact(site, "gw-hb"))[1] is None  # nothing refused was stored
    for interval in (10, 3600):
        answer = await beat(client, gateway, {"interval_seconds": interval, "sent_at": sent_at})
        assert answer.status_code == 204, answer.text
        assert answer.content == b""
        assert (await contact(site, "gw-hb"))[1] == timedelta(seconds=interval)
    huge = b'{"interval_seconds": 60, "sent_at": "' + b"x" * (300 * 1024) + b'"}'
    answer = await client.post(
        "/v1/gateway/heartbeat",
        content=huge,
        headers=gateway.headers | {"Content-Type": "application/json"},
    )
    assert answer.status_code == 413
    async with site.pool.connection() as conn:
        await conn.execute("UPDATE gateways SET disabled_at = now() WHERE gateway_id = 'gw-hb'")
    assert (await beat(client, gateway)).status_code == 401
