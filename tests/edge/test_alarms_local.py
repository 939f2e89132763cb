"""Local alarms: raised only while the cloud is away, after the on-delay, cleared with hysteresis;
published on a real Mosquitto broker and recorded as DeviceStatus."""

from __future__ import annotations

import asyncio
import json
import queue
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge.alarms import (
    LocalAlarmConfig,
    LocalAlarms,
    MqttAlarmPublisher,
    MqttBrokerConfig,
    SensorLimits,
)
from edge.clock import ManualClock
from protocols.records import DeviceState, DeviceStatus, Quality, Reading, Record
from tests.edge.conftest import T0

CONFIG = LocalAlarmConfig(
    cloud_unreachable_after=timedelta(minutes=5),
    on_delay=timedelta(minutes=10),
    hysteresis=0.5,
    sensors={
        "fridge-1/t": SensorLimits(low=2.0, high=8.0),
        "freezer-1/t": SensorLimits(high=-15.0, on_delay=timedelta(minutes=1)),
    },
)


def at(minute: float, value: float | None, sensor: str = "fridge-1/t") -> Reading:
    """A device-timed reading (received a second after its device time)."""
    t = T0 + timedelta(minutes=minute)
    quality = Quality.GOOD if value is not None else Quality.BAD
    return Reading(
        sensor_id=sensor, time=t, value=value, quality=quality,
        received_at=t + timedelta(seconds=1),
    )  # fmt: skip


class Offline:
    """How long the cloud has been away, set by the test."""

    def __init__(self) -> None:
        self.value = timedelta(0)

    def __call__(self, sensor_id: str) -> timedelta:
        return self.value


async def feed(alarms: LocalAlarms, *readings: Reading) -> None:
    for r in readings:
        alarms.observe((r,))


async def committed(alarms: LocalAlarms) -> list[Record]:
    """Runs the alarm writer until its pending records are handed over."""
    out: list[Record] = []

    async def emit(records: tuple[Record, ...]) -> int:
        out.extend(records)
        return len(out)

    task = asyncio.create_task(alarms.run(emit))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    return out


async def test_no_local_alarm_while_the_cloud_is_reachable(manual_clock: ManualClock) -> None:
    alarms = LocalAlarms("gw-1", CONFIG, manual_clock, Offline())
    await feed(alarms, *(at(m, 12.0) for m in range(60)))
    assert alarms.active == {}
    assert await committed(alarms) == []


async def test_raised_after_on_delay_while_offline_and_cleared_with_hysteresis(
    manual_clock: ManualClock,
) -> None:
    offline = Offline()
    offline.value = timedelta(minutes=6)
    alarms = LocalAlarms("gw-1", CONFIG, manual_clock, offline)
    await feed(alarms, at(0, 5.0), at(1, 9.0), at(6, 9.5), at(10.5, 9.1))
    assert alarms.active == {}  # breached 9.5 min < on-delay 10 min
    await feed(alarms, at(11, 9.2))
    assert list(alarms.active) == ["sensor/fridge-1/t"]
    assert "above 8.0" in alarms.active["sensor/fridge-1/t"]
    await feed(alarms, at(12, 7.8))  # back under the limit, but inside the hysteresis band
    assert list(alarms.active) == ["sensor/fridge-1/t"]
    await feed(alarms, at(13, 7.4))
    assert alarms.active == {}
    records = await committed(alarms)
    assert all(isinstance(r, DeviceStatus) for r in records)
    statuses = [r for r in records if isinstance(r, DeviceStatus)]
    # coalesced per key: the latest state (cleared) is what is pending
    assert [(s.device_id, s.device_type, s.state) for s in statuses] == [
        ("fridge-1/t", "sensor", DeviceState.ONLINE)
    ]
    assert statuses[0].time == at(13, 0).time  # stamped with the reading's device time


async def test_a_breach_interrupted_restarts_the_delay(manual_clock: ManualClock) -> None:
    offline = Offline()
    offline.value = timedelta(hours=1)
    alarms = LocalAlarms("gw-1", CONFIG, manual_clock, offline)
    await feed(alarms, at(0, 9.0), at(8, 9.0), at(9, 7.0), at(12, 9.0), at(21, 9.0))
    assert alarms.active == {}
    await feed(alarms, at(22, 9.0))
    assert "sensor/fridge-1/t" in alarms.active


async def test_low_limits_per_sensor_delays_and_bad_readings(manual_clock: ManualClock) -> None:
    offline = Offline()
    offline.value = timedelta(hours=1)
    alarms = LocalAlarms("gw-1", CONFIG, manual_clock, offline)
    await feed(alarms, at(0, 1.0), at(5, None), at(10, 1.5))
    assert "below 2.0" in alarms.active["sensor/fridge-1/t"]
    await feed(alarms, at(0, -10.0, "freezer-1/t"), at(1, -11.0, "freezer-1/t"))
    assert "sensor/freezer-1/t" in alarms.active
    await feed(alarms, at(0, 50.0, "unknown/t"), at(60, 50.0, "unknown/t"))
    assert len(alarms.active) == 2


async def test_a_breach_already_long_alarms_once_the_cloud_is_gone(
    manual_clock: ManualClock,
) -> None:
    offline = Offline()
    alarms = LocalAlarms("gw-1", CONFIG, manual_clock, offline)
    await feed(alarms, at(0, 9.0), at(30, 9.0))
    assert alarms.active == {}
    offline.value = timedelta(minutes=5)
    await feed(alarms, at(31, 9.0))
    assert "sensor/fridge-1/t" in alarms.active


async def test_gateway_alarms_are_reported_once_per_state(manual_clock: ManualClock) -> None:
    alarms = LocalAlarms("gw-1", CONFIG, manual_clock, Offline())
    await alarms.raise_alarm("uplink.refused", "401")
    await alarms.raise_alarm("uplink.refused", "401")
    first = await committed(alarms)
    assert len(first) == 1
    status = first[0]
    assert isinstance(status, DeviceStatus)
    assert (status.device_id, status.device_type, status.state) == (
        "gw-1", "gateway", DeviceState.DEGRADED
    )  # fmt: skip
    await alarms.clear_alarm("uplink.refused", "ok again")
    await alarms.clear_alarm("uplink.refused", "ok again")
    assert len(await committed(alarms)) == 1


@pytest.mark.integration
async def test_alarm_is_published_retained_on_the_broker(
    mqtt_url: str, manual_clock: ManualClock
) -> None:
    parts = urlsplit(mqtt_url)
    prefix = f"test-{uuid.uuid4().hex}"
    broker = MqttBrokerConfig(host=parts.hostname or "", port=parts.port or 1883)
    offline = Offline()
    offline.value = timedelta(hours=1)
    config = CONFIG.model_copy(update={"topic_prefix": prefix})
    async with MqttAlarmPublisher(broker) as publisher:
        alarms = LocalAlarms("gw-1", config, manual_clock, offline, publisher)
        await feed(alarms, at(0, 9.0), at(11, 9.0))
        await asyncio.sleep(0.3)  # let paho's thread deliver the QoS 1 publish
    # a panel connecting later still sees the current state (retained)
    got: queue.Queue[tuple[str, dict[str, object], bool]] = queue.Queue()
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2)
    client.on_message = lambda _c, _u, msg: got.put(
        (msg.topic, json.loads(msg.payload), bool(msg.retain))
    )
    client.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
    client.subscribe(f"{prefix}/#", qos=1)
    client.loop_start()
    try:
        topic, payload, retained = await asyncio.to_thread(got.get, True, 5)
    finally:
        client.loop_stop()
        client.disconnect()
    assert topic == f"{prefix}/gw-1/sensor/fridge-1/t"
    assert retained
    assert payload["state"] == "raised"
    assert payload["alarm"] == "sensor/fridge-1/t"


@pytest.mark.integration
async def test_broker_away_still_logs_and_records(
    manual_clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    from coldtrace.devservices import free_port

    broker = MqttBrokerConfig(host="127.0.0.1", port=free_port(), max_queued=1)
    offline = Offline()
    offline.value = timedelta(hours=1)
    async with MqttAlarmPublisher(broker) as publisher:
        alarms = LocalAlarms("gw-1", CONFIG, manual_clock, offline, publisher)
        await alarms.raise_alarm("a", "first")
        await alarms.raise_alarm("b", "second")  # beyond the paho queue: not published
    assert set(alarms.active) == {"a", "b"}
    assert alarms.publish_errors == 1
    assert len(await committed(alarms)) == 2
    assert "LOCAL ALARM a: first" in caplog.text


def by_receipt(clock: ManualClock, value: float, sensor: str = "fridge-1/t") -> Reading:
    """A reading timed by receipt (the device sends no time): time == received_at."""
    t = clock.now()
    return Reading(sensor_id=sensor, time=t, value=value, received_at=t)


async def test_a_reading_from_the_future_neither_hides_a_breach_nor_skips_the_delay(
    manual_clock: ManualClock,
) -> None:
    """Issue 13.8: one reading stamped 2200 is stored but not judged, as in the cloud."""
    offline = Offline()
    offline.value = timedelta(hours=1)
    alarms = LocalAlarms("gw-1", CONFIG, manual_clock, offline)
    received = at(0, 0).received_at
    year_2200 = Reading(
        sensor_id="fridge-1/t",
        time=datetime(2200, 1, 1, tzinfo=UTC),
        value=5.0,
        received_at=received,
    )
    # A real breach, with an in-range reading from 2200 in the middle of it.
    await feed(alarms, at(0, 9.0), year_2200, at(5, 9.0))
    assert alarms.active == {}  # 5 minutes of breach, on-delay 10
    await feed(alarms, at(11, 9.0))
    assert "sensor/fridge-1/t" in alarms.active  # the future reading did not end the breach
    # One breach reading plus one future breach reading does not skip the on-delay.
    other = LocalAlarms("gw-1", CONFIG, manual_clock, offline)
    future_breach = year_2200.model_copy(update={"value": 30.0})
    await feed(other, at(0, 9.0), future_breach)
    assert other.active == {}
    await feed(other, at(9, 9.0))
    assert other.active == {}


async def test_a_bad_reading_with_a_value_is_not_judged(manual_clock: ManualClock) -> None:
    """As in the cloud's cold-chain step, quality 'bad' is not judged even with a value: a
    sensor-failure 85.0 neither starts a breach nor, in range, ends one."""
    offline = Offline()
    offline.value = timedelta(hours=1)

    def bad(minute: float, value: float) -> Reading:
        return at(minute, value).model_copy(update={"quality": Quality.BAD})

    alarms = LocalAlarms("gw-1", CONFIG, manual_clock, offline)
    await feed(alarms, bad(0, 85.0), at(5, 9.0), at(11, 9.0))
    assert alarms.active == {}  # the breach began at minute 5: 6 of 10 minutes
    await feed(alarms, at(12, 9.0), bad(13, 5.0), at(15.5, 9.0))
    # Raised at minute 15.5 (10.5 minutes after minute 5): the bad 5.0 did not end the breach.
    assert (T0 + timedelta(minutes=5)).isoformat() in alarms.active["sensor/fridge-1/t"]


async def test_a_redelivered_old_reading_does_not_reset_a_breach(
    manual_clock: ManualClock,
) -> None:
    offline = Offline()
    offline.value = timedelta(hours=1)
    alarms = LocalAlarms("gw-1", CONFIG, manual_clock, offline)
    await feed(alarms, at(0, 5.0), at(1, 9.0), at(6, 9.0))
    await feed(alarms, at(0, 5.0))  # the broker re-sends an old in-range message
    await feed(alarms, at(11.5, 9.0))
    assert "sensor/fridge-1/t" in alarms.active


@pytest.mark.parametrize("step", [timedelta(hours=-1), timedelta(hours=1)])
async def test_on_delay_of_readings_timed_by_receipt_runs_on_the_monotonic_clock(
    manual_clock: ManualClock, step: timedelta
) -> None:
    """Issue 22.2: an NTP step of an hour neither delays the alarm by an hour nor raises it
    after a minute."""
    offline = Offline()
    offline.value = timedelta(hours=1)
    alarms = LocalAlarms("gw-1", CONFIG, manual_clock, offline)
    await feed(alarms, by_receipt(manual_clock, 9.0))
    manual_clock.advance(60)
    manual_clock.step_wall(step)
    await feed(alarms, by_receipt(manual_clock, 9.0))
    assert alarms.active == {}  # one minute of breach, whatever the wall clock says
    manual_clock.advance(9 * 60 + 1)
    await feed(alarms, by_receipt(manual_clock, 9.0))
    assert "sensor/fridge-1/t" in alarms.active  # ten minutes of breach, not seventy


async def test_armed_only_when_the_cloud_is_behind_on_that_sensor(
    manual_clock: ManualClock,
) -> None:
    behind = {"fridge-1/t": timedelta(minutes=4), "freezer-1/t": timedelta(minutes=5)}
    alarms = LocalAlarms("gw-1", CONFIG, manual_clock, lambda sensor: behind[sensor])
    await feed(alarms, at(0, 9.0), at(11, 9.0))
    await feed(alarms, at(0, -10.0, "freezer-1/t"), at(2, -10.0, "freezer-1/t"))
    assert list(alarms.active) == ["sensor/freezer-1/t"]
    assert "300 s behind" in alarms.active["sensor/freezer-1/t"]
