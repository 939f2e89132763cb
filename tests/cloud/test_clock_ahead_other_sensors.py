"""A gateway's reading stamped a day ahead judges nothing for the gateway's *other* sensors
either (issue 12.3: two such readings used to open "no data" for every other sensor of the
gateway, confirmed at the future time). Times here are the real clock's, because the cloud
judges against its own receipt time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cloud.coldchain.step import check_silences
from protocols.records import Reading
from tests.support.coldchain_seed import FRIDGE_A, FRIDGE_B, ROOM, SENSOR, Site, readings

pytestmark = pytest.mark.integration
M = timedelta(minutes=1)


async def test_two_readings_a_day_ahead_open_nothing_for_the_other_sensors(site: Site) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    start = now - 20 * M
    steady = {FRIDGE_A: 5.0, FRIDGE_B: 5.0, ROOM: 20.0}
    on_time = [r for unit, v in steady.items() for r in readings(SENSOR[unit], start, [v] * 18)]
    await site.send(sorted(on_time, key=lambda r: r.time))
    ahead = now + timedelta(days=1)
    # the gateway claims it received them a day ahead too (and sends the batch "then")
    future = [
        Reading(sensor_id=SENSOR[FRIDGE_A], time=ahead + i * M, value=12.0,
                received_at=ahead + i * M)
        for i in range(2)
    ]  # fmt: skip
    await site.send(future)
    stored = await site.rows("SELECT count(*) FROM readings WHERE time > %s", now + M)
    assert stored == [(2,)]  # kept as sent
    assert await site.rows("SELECT kind, sensor_id FROM excursions") == []
    seen = await site.rows("SELECT max(last_seen_at) FROM devices")
    [(latest,)] = seen
    assert isinstance(latest, datetime)
    assert latest <= datetime.now(UTC) + 5 * M
    # the silence job at the cloud's time finds every sensor current: none silent
    async with site.pool.connection() as conn:
        assert await check_silences(conn, datetime.now(UTC)) == 0
    assert await site.rows("SELECT kind, sensor_id FROM excursions") == []
