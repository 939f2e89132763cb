"""The condition job: gateway offline, sensor never reported, outbox filling, battery and signal
low, clock skew; each raised once however often the job runs, and routed like any alert."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cloud.alarms.conditions import detect_conditions
from cloud.alarms.policy import Policy
from cloud.alarms.settings import AlarmSettings
from protocols.records import Reading
from tests.support.alarm_receivers import smtp_sink
from tests.support.alarm_setup import add_channel, add_contact, add_policy, contact, steps, worker
from tests.support.coldchain_seed import FRIDGE_A, FRIDGE_B, SENSOR, SITE, Site

pytestmark = pytest.mark.integration

SETTINGS = AlarmSettings()


async def run(site: Site, now: datetime) -> dict[str, int]:
    async with site.pool.connection() as conn:
        return (await detect_conditions(conn, now, SETTINGS)).raised


async def test_each_condition_is_raised_once_and_routed(site: Site) -> None:
    now = datetime.now(UTC)
    await site.send(
        [
            # a probe 10 minutes ahead of its gateway: stored, and its clock reported
            Reading(
                sensor_id=SENSOR[FRIDGE_B],
                time=now + timedelta(minutes=10),
                value=5.0,
                received_at=now,
            ),
        ]
    )
    async with site.pool.connection() as conn, conn.transaction():
        await conn.execute("UPDATE gateways SET site_id = %s", (SITE,))
        await conn.execute(
            "INSERT INTO sensors (sensor_id, location_id, mounted_at) VALUES"
            " ('cc-fridge-b/t2', %s, %s)",
            (FRIDGE_B, now - timedelta(hours=1)),
        )
        await conn.execute(
            "INSERT INTO devices (device_id, device_type, gateway_id, last_state, last_detail,"
            " state_at) VALUES ('cc-gw', 'gateway', 'cc-gw', 'degraded', 'local alarm"
            " outbox/high_water: outbox 91%% full (9100 records, 1 bytes); full in about"
            " 0:20:00', %s)",
            (now,),
        )
        await conn.execute(
            'UPDATE devices SET attributes = \'{"battery_percent": 12, "rssi_dbm": -101}\''
            " WHERE device_id = %s",
            (SENSOR[FRIDGE_B],),
        )
        await conn.execute(
            "INSERT INTO gateway_refusals (gateway_id, reason, refused, last_at, last_detail)"
            " VALUES ('cc-gw', 'foreign_site', 3, %s, 'sensor x is mounted at site other')",
            (now,),
        )
    later = now + timedelta(minutes=11)
    first = await run(site, later)
    assert first == {
        "gateway_offline": 1,
        "sensor_never_reported": 1,
        "outbox_filling": 1,
        "battery_low": 1,
        "signal_low": 1,
        "clock_skew": 1,
        "record_refused": 1,
    }
    assert await run(site, later + timedelta(seconds=30)) == {}  # the same occurrences
    # The seeded sensors of fridge A and the room were mounted without a time and never read:
    # they count from when the job first noticed them (the first run), 30 minutes on.
    third = await run(site, later + timedelta(minutes=31))
    assert third.get("sensor_never_reported") == 2
    assert await site.rows("SELECT sensor_id FROM alarm_unseen_sensors ORDER BY sensor_id") == [
        (SENSOR[FRIDGE_A],),
        ("cc-room/t",),
    ]
    rows = await site.rows(
        "SELECT kind, severity, location_id, message FROM alerts"
        " WHERE kind <> 'excursion_opened' ORDER BY kind"
    )
    by_kind = {r[0]: r for r in rows}
    never = [str(r[3]) for r in rows if r[0] == "sensor_never_reported"]
    assert any("cc-fridge-b/t2" in m for m in never), never
    assert "full in about 0:20:00" in str(by_kind["outbox_filling"][3])
    assert "10 min ahead" in str(by_kind["clock_skew"][3])
    assert by_kind["gateway_offline"][1] == "critical"

    async with smtp_sink() as smtp:
        await add_channel(site, "ops-mail", smtp.url("ops@example.org"))
        await add_contact(site, "ops", "ops-mail")
        await add_policy(site, "site", Policy(steps=steps([contact("ops")])))
        await worker(site).tick(datetime.now(UTC))
    subjects = sorted(m.subject for m in smtp.mails)
    assert "[CRITICAL] Gateway offline" in subjects
    assert "[WARNING] Sensor never reported — cc-fridge-b" in subjects
    assert "[WARNING] Battery low — cc-fridge-b" in subjects
