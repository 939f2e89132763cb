"""The MQTT loggers simulator → private Mosquitto → MQTT source: every device shape, with the
devices' own timestamps, and malformed payloads dead-lettered while the good ones keep flowing."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from edge.sources.mqtt import MqttSource
from protocols.payloads import DecoderSpec
from protocols.records import DeviceState, Quality
from simulators.mqtt_loggers import Malformed, MqttLoggerFleet, MqttSimConfig
from simulators.site import MqttLogger, Shape, SiteRuntime, SiteSpec, UnitSpec
from simulators.thermal import UnitProfile
from tests.support.temperature_sources import Collected, mqtt_config, settle, wait_status

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def temperatures(got: Collected) -> int:
    return sum(1 for r in got.readings if r.unit == "degC")


class ManualClock:
    def __init__(self, start: datetime) -> None:
        self.time = start

    def now(self) -> datetime:
        return self.time


async def test_simulated_loggers_of_every_shape_reach_the_source(mqtt_url: str) -> None:
    tag = uuid.uuid4().hex[:8]
    eui = f"24e1241{tag}0"[:16]
    loggers = {
        "plain": MqttLogger(shape=Shape.PLAIN, device_id=f"t-{tag}.t"),
        "chirp": MqttLogger(shape=Shape.CHIRPSTACK, device_id=eui),
        "tasmota": MqttLogger(
            shape=Shape.TASMOTA, device_id=f"tasmota_{tag}", timezone="Europe/Paris"
        ),
        "shelly": MqttLogger(shape=Shape.SHELLY, device_id=f"shelly-{tag}"),
    }
    site = SiteSpec(
        site_id=f"site-{tag}",
        units=tuple(
            UnitSpec(
                unit_id=name, name=name, profile=UnitProfile.REFRIGERATOR, seed=i, logger=logger
            )
            for i, (name, logger) in enumerate(loggers.items())
        ),
    )
    decoders = (
        DecoderSpec(topic=f"coldtrace/site-{tag}/+/reading", format="coldtrace-json"),
        DecoderSpec(topic=f"application/+/device/{eui}/event/up", format="chirpstack-v4"),
        DecoderSpec(
            topic=f"tele/tasmota_{tag}/SENSOR",
            format="tasmota",
            sensor_id="tasmota/{sensor}",
            timezone="Europe/Paris",
        ),
        DecoderSpec(
            topic=f"shelly-{tag}/status/temperature:0",
            format="shelly-gen2",
            sensor_id=f"shelly-{tag}",
        ),
    )
    clock = ManualClock(T0)
    got = Collected()
    source_config = mqtt_config(mqtt_url, "unused", decoders=decoders)
    async with MqttSource(source_config) as source:
        records = aiter(source)
        await wait_status(records, got, DeviceState.ONLINE)
        sim_config = MqttSimConfig(broker=mqtt_url, tick=timedelta(hours=1), reconnect_max_delay=1)
        async with MqttLoggerFleet(sim_config, SiteRuntime(site, start=T0), clock) as fleet:
            async with asyncio.timeout(10):
                await fleet.wait_connected()
            for minute in range(1, 6):
                clock.time = T0 + timedelta(minutes=minute)
                fleet.step()
                if minute == 3:
                    for unit, kind in (
                        ("plain", Malformed.TRUNCATED),
                        ("chirp", Malformed.SHORT_FRAME),
                        ("tasmota", Malformed.WRONG_TYPE),
                        ("shelly", Malformed.NOT_JSON),
                    ):
                        fleet.publish_malformed(unit, kind)
            async with asyncio.timeout(10):
                await fleet.wait_delivered()
        async with asyncio.timeout(10):
            while temperatures(got) < 20 or len(got.dead_letters) < 4:
                got.records.extend(await anext(records))
        await settle(records)

    by_sensor = Counter(r.sensor_id for r in got.readings if r.unit == "degC")
    assert by_sensor == {
        f"t-{tag}.t": 5,
        eui: 5,
        "tasmota/01191ED79247": 5,
        f"shelly-{tag}": 5,
    }
    device_timed = [
        r for r in got.readings if not r.sensor_id.startswith("shelly") and r.unit == "degC"
    ]
    # Our JSON, ChirpStack and Tasmota (local Paris time) all land on the simulated minutes.
    for sensor in (f"t-{tag}.t", eui, "tasmota/01191ED79247"):
        times = [r.time for r in device_timed if r.sensor_id == sensor]
        assert times == [T0 + timedelta(minutes=m) for m in range(1, 6)], sensor
    shelly = [r for r in got.readings if r.sensor_id.startswith("shelly")]
    assert all(r.quality is Quality.UNCERTAIN and r.time == r.received_at for r in shelly)
    assert len(got.dead_letters) == 4
    assert {d.source.split(":", 1)[1].split("/")[0] for d in got.dead_letters} == {
        "coldtrace",
        "application",
        "tele",
        f"shelly-{tag}",
    }
