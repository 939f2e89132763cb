"""A backlog is judged at the location the sensor was mounted at when each reading was taken.

The seeded site (``tests.support.coldchain_seed``): fridges A and B (2-8 °C), a controlled room
(15-25 °C). A logger is moved from fridge A to the room; its readings from before the move
arrive only afterwards, through the real ingest writer and processor.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cloud.coldchain.mounts import Mount, Timeline
from cloud.masterdata.sensors import SensorMount, mount_history, mount_sensor
from tests.support.coldchain_seed import FRIDGE_A, FRIDGE_B, ROOM, T0, Site, readings

pytestmark = pytest.mark.integration

LOGGER = "mobile-logger/t"


def _t(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_timeline_splits_readings_at_each_mount() -> None:
    line = Timeline((Mount(None, "a"), Mount(_t(10), None), Mount(_t(20), "b")))
    samples = [(_t(m), 5.0) for m in (0, 9, 10, 15, 20, 30)]
    runs = [(where, [int((t - T0).total_seconds() // 60) for t, _ in run])
            for where, run in line.split(samples)]  # fmt: skip
    assert runs == [("a", [0, 9]), (None, [10, 15]), ("b", [20, 30])]
    assert Timeline((Mount(_t(5), "a"),)).at(_t(4)) is None


async def _mount(site: Site, location: str | None, at: datetime) -> None:
    async with site.pool.connection() as conn, conn.transaction():
        await mount_sensor(conn, SensorMount(LOGGER, location, at, "mobile logger"))


async def test_backlog_from_before_a_remount_is_judged_at_the_old_location(site: Site) -> None:
    await _mount(site, FRIDGE_A, T0 - timedelta(days=1))
    # moved to the room at T0+60 min; the logger's backlog from T0 on arrives after the move
    await _mount(site, ROOM, _t(60))
    # 20 °C: far too warm for fridge A (2-8 °C) for 40 minutes, normal for the room (15-25 °C)
    await site.send(readings(LOGGER, _t(10), [20.0] * 120))
    found = await site.rows(
        "SELECT location_id, kind, level, started_at, ended_at FROM excursions"
        " WHERE sensor_id = %s",
        LOGGER,
    )
    assert found == [(FRIDGE_A, "high", "action", _t(10), _t(59))]
    # the lots in fridge A were quarantined by it; the room's lot was not
    held = await site.rows("SELECT lot_id FROM lots WHERE status = 'quarantined' ORDER BY lot_id")
    assert held == [(site.lots["a1"],), (site.lots["a2"],)]
    async with site.pool.connection() as conn:
        history = await mount_history(conn, LOGGER)
    assert [(m.location_id, m.valid_from) for m in history] == [
        (FRIDGE_A, T0 - timedelta(days=1)),
        (ROOM, _t(60)),
    ]


async def test_late_reading_from_before_a_remount_replays_at_the_old_location(site: Site) -> None:
    await _mount(site, FRIDGE_B, T0 - timedelta(days=1))
    await _mount(site, ROOM, _t(60))
    # the room's readings arrive first, then a late run from fridge B
    await site.send(readings(LOGGER, _t(60), [20.0] * 30))
    assert await site.rows("SELECT 1 FROM excursions WHERE sensor_id = %s", LOGGER) == []
    await site.send(readings(LOGGER, _t(0), [5.0] * 10 + [11.0] * 40))
    found = await site.rows("SELECT location_id, kind FROM excursions WHERE sensor_id = %s", LOGGER)
    assert found == [(FRIDGE_B, "high")]


async def test_readings_before_the_first_mount_and_while_unmounted_are_not_judged(
    site: Site,
) -> None:
    await _mount(site, FRIDGE_A, _t(60))
    await _mount(site, None, _t(120))
    # too warm before the mount and after the unmount: judged nowhere
    await site.send(readings(LOGGER, _t(0), [20.0] * 60 + [5.0] * 60 + [20.0] * 30))
    assert await site.rows("SELECT 1 FROM excursions WHERE sensor_id = %s", LOGGER) == []
    state = await site.rows(
        "SELECT state->>'last_time' FROM coldchain_sensor_state WHERE sensor_id = %s", LOGGER
    )
    assert state
    assert datetime.fromisoformat(str(state[0][0])).astimezone(UTC) == _t(119)


async def test_there_and_back_again_in_one_batch(site: Site) -> None:
    await _mount(site, FRIDGE_A, T0 - timedelta(days=1))
    await _mount(site, FRIDGE_B, _t(30))
    await _mount(site, FRIDGE_A, _t(60))
    await site.send(readings(LOGGER, _t(0), [20.0] * 90))
    found = await site.rows(
        "SELECT location_id, started_at, ended_at FROM excursions WHERE sensor_id = %s"
        " AND kind = 'high' ORDER BY started_at",
        LOGGER,
    )
    # each stay is judged on its own: what was open in a fridge is closed when the logger leaves
    assert found == [
        (FRIDGE_A, _t(0), _t(29)),
        (FRIDGE_B, _t(30), _t(59)),
        (FRIDGE_A, _t(60), None),
    ]
