"""Alert webhook delivery from the outbox: after commit, retried with backoff, given up."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from cloud.coldchain.alerts import AlertDeliverer, AlertSettings
from tests.support.coldchain_seed import FRIDGE_A, SENSOR, T0, Site, readings

pytestmark = pytest.mark.integration


SETTINGS = AlertSettings(
    webhook_url="https://alarms.example/hook",
    max_attempts=3,
    backoff_initial=timedelta(seconds=10),
    backoff_max=timedelta(seconds=15),
)


async def test_webhook_retries_then_delivers_each_alert_once(site: Site) -> None:
    await site.send(readings(SENSOR[FRIDGE_A], T0, [5.0] * 5 + [9.0] * 30))
    posted: list[dict[str, object]] = []
    keys: list[str] = []
    fail = {"left": 1}

    def handler(request: httpx.Request) -> httpx.Response:
        if fail["left"]:
            fail["left"] -= 1
            return httpx.Response(503)
        posted.append(json.loads(request.content))
        keys.append(request.headers["Idempotency-Key"])
        return httpx.Response(204)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        deliverer = AlertDeliverer(site.pool, client, SETTINGS)
        now = datetime.now(UTC) + timedelta(seconds=1)  # the outbox is due from commit time
        first = await deliverer.deliver_due(now)
        assert (first.delivered, first.failed) == (1, 1)  # the first POST got a 503
        again = await deliverer.deliver_due(now)  # the failed one waits for its backoff
        assert (again.delivered, again.failed) == (0, 0)
        later = await deliverer.deliver_due(now + timedelta(seconds=11))
        assert (later.delivered, later.failed) == (1, 0)
        assert (await deliverer.deliver_due(now + timedelta(hours=1))).delivered == 0
    assert sorted(str(p["kind"]) for p in posted) == ["excursion_opened", "quarantine"]
    assert len(set(keys)) == 2
    assert all(k.startswith("coldtrace-alert-") for k in keys)
    assert all(p["location_id"] == FRIDGE_A for p in posted)
    pending = await site.rows("SELECT count(*) FROM alert_outbox WHERE delivered_at IS NULL")
    assert pending == [(0,)]


async def test_unreachable_webhook_is_given_up_but_alarm_stays(site: Site) -> None:
    await site.send(readings(SENSOR[FRIDGE_A], T0, [5.0] * 5 + [9.0] * 30))

    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        deliverer = AlertDeliverer(site.pool, client, SETTINGS)
        now = datetime.now(UTC) + timedelta(seconds=1)
        for _ in range(3):
            await deliverer.deliver_due(now)
            now += timedelta(seconds=16)
        assert (await deliverer.deliver_due(now + timedelta(days=1))).failed == 0
    rows = await site.rows(
        "SELECT attempts, given_up_at IS NOT NULL, last_error FROM alert_outbox ORDER BY alert_id"
    )
    assert [(r[0], r[1]) for r in rows] == [(3, True), (3, True)]
    assert all("ConnectError" in str(r[2]) for r in rows)
    alarms = await site.rows("SELECT count(*) FROM alerts WHERE acknowledged_at IS NULL")
    assert alarms == [(2,)]


async def test_no_webhook_configured_delivers_nothing(site: Site) -> None:
    await site.send(readings(SENSOR[FRIDGE_A], T0, [5.0] * 5 + [9.0] * 30))

    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError("no request expected")

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        result = await AlertDeliverer(site.pool, client, AlertSettings()).deliver_due(
            datetime.now(UTC) + timedelta(seconds=1)
        )
    assert (result.delivered, result.failed) == (0, 0)
