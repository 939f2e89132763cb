"""A probe whose clock runs ahead of the gateway is stored as sent but not judged.

One reading dated years ahead used to become the sensor's newest reading: the silence check then
saw "last reading in the future" and never opened "no data", and ``devices.last_seen_at`` stuck at
that future time. Silence must never read as in range.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from cloud.coldchain.step import check_silences
from protocols.records import Reading
from tests.support.coldchain_seed import FRIDGE_B, SENSOR, T0, Site, readings

pytestmark = pytest.mark.integration
M = timedelta(minutes=1)


async def test_a_future_stamped_reading_is_stored_but_silence_is_still_caught(site: Site) -> None:
    sensor = SENSOR[FRIDGE_B]
    arrived = T0 + 5 * M
    future = Reading(sensor_id=sensor, time=T0 + timedelta(days=4 * 365), value=5.0,
                     received_at=arrived)  # fmt: skip
    await site.send([*readings(sensor, T0, [5.0] * 5), future])
    stored = await site.rows("SELECT count(*) FROM readings WHERE sensor_id = %s", sensor)
    assert stored == [(6,)]  # nothing is thrown away
    seen = await site.rows("SELECT last_seen_at FROM devices WHERE device_id = %s", sensor)
    assert seen == [(arrived,)]
    async with site.pool.connection() as conn:
        opened = await check_silences(conn, T0 + 60 * M)
    assert opened == 1
    rows = await site.rows("SELECT kind, ended_at FROM excursions WHERE sensor_id = %s", sensor)
    assert rows == [("no_data", None)]
