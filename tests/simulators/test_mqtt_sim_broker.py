"""The MQTT loggers against a real Mosquitto: every shape, faults, malformed payloads, and the
broker going away (backlog kept and sent in order, or skipped, as each device does)."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from coldtrace.devservices import MosquittoService
from simulators.mqtt_loggers import (
    Malformed,
    MalformedKindError,
    MqttLoggerFleet,
    MqttSimConfig,
    topic_of,
)
from simulators.site import MqttLogger, Shape, SiteRuntime, SiteSpec, UnitSpec
from simulators.thermal import Fault, UnitProfile

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
IDLE = timedelta(hours=1)  # the background task ticks rarely: tests call step() themselves


class ManualClock:
    def __init__(self, start: datetime) -> None:
        self.time = start

    def now(self) -> datetime:
        return self.time

    def advance(self, delta: timedelta) -> None:
        self.time += delta


async def until(predicate: Callable[[], bool]) -> None:
    """Polls a condition that paho's threads change (there is no asyncio event to wait on)."""
    async with asyncio.timeout(10):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.02)


class Subscriber:
    """A persistent-session QoS 1 subscriber, so nothing published while it reconnects is lost."""

    def __init__(self, url: str, topic: str) -> None:
        parts = urlsplit(url)
        self.messages: list[tuple[str, bytes]] = []
        self._topic = topic
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"test-sub-{uuid.uuid4().hex[:12]}",
            clean_session=False,
        )
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self._ready.set()
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(1, 1)
        self.client.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
        self.client.loop_start()
        assert self._ready.wait(5)

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((msg.topic, bytes(msg.payload)))

    def on(self, topic: str) -> list[bytes]:
        with self._lock:
            return [p for t, p in self.messages if t == topic]

    async def wait_for(self, topic: str, count: int) -> list[bytes]:
        await until(lambda: len(self.on(topic)) >= count)
        return self.on(topic)

    def close(self) -> None:
        # The persistent session outlives us on the shared broker: unsubscribe first, or it
        # keeps queueing everything later tests publish.
        done = threading.Event()
        self.client.on_unsubscribe = lambda c, u, m, rcs, p: done.set()
        result, _ = self.client.unsubscribe(self._topic)
        if result == mqtt.MQTT_ERR_SUCCESS:
            done.wait(5)
        self.client.disconnect()
        self.client.loop_stop()


def unique_site(**intervals: timedelta) -> SiteSpec:
    """One unit per shape with ids unique to this test (the broker is shared)."""
    tag = uuid.uuid4().hex[:8]
    loggers = {
        "plain": MqttLogger(shape=Shape.PLAIN, device_id=f"t-{tag}.t"),
        "chirp": MqttLogger(shape=Shape.CHIRPSTACK, device_id=f"24e1241{tag}0"[:16]),
        "tasmota": MqttLogger(
            shape=Shape.TASMOTA, device_id=f"tasmota_{tag}", timezone="Europe/Paris"
        ),
        "shelly": MqttLogger(shape=Shape.SHELLY, device_id=f"shellyhtg3-{tag}"),
    }
    units = tuple(
        UnitSpec(
            unit_id=name,
            name=name,
            profile=UnitProfile.REFRIGERATOR,
            seed=i,
            logger=logger.model_copy(
                update={"interval": intervals.get(name, timedelta(minutes=1))}
            ),
        )
        for i, (name, logger) in enumerate(loggers.items())
    )
    return SiteSpec(site_id=f"site-{tag}", units=units)


def topics(site: SiteSpec) -> dict[str, str]:
    out = {}
    for unit in site.units:
        assert isinstance(unit.logger, MqttLogger)
        out[unit.unit_id] = topic_of(site.site_id, unit.logger)
    return out


@asynccontextmanager
async def fleet_on(url: str, site: SiteSpec, clock: ManualClock) -> AsyncIterator[MqttLoggerFleet]:
    runtime = SiteRuntime(site, start=clock.now())
    config = MqttSimConfig(broker=url, tick=IDLE, reconnect_max_delay=1)
    async with MqttLoggerFleet(config, runtime, clock) as fleet:
        async with asyncio.timeout(10):
            await fleet.wait_connected()
        yield fleet


async def test_every_shape_arrives_with_its_device_time(mqtt_url: str) -> None:
    site, clock = unique_site(), ManualClock(T0)
    sub = Subscriber(mqtt_url, "#")
    try:
        async with fleet_on(mqtt_url, site, clock) as fleet:
            clock.advance(timedelta(minutes=5))
            assert fleet.topics() == topics(site)
            assert fleet.topics()["tasmota"].startswith("tele/tasmota_")
            assert fleet.step() == 20
            async with asyncio.timeout(10):
                await fleet.wait_delivered()
            t = topics(site)
            plain = [json.loads(p) for p in await sub.wait_for(t["plain"], 5)]
            chirp = [json.loads(p) for p in await sub.wait_for(t["chirp"], 5)]
            tasmota = [json.loads(p) for p in await sub.wait_for(t["tasmota"], 5)]
            shelly = [json.loads(p) for p in await sub.wait_for(t["shelly"], 5)]
    finally:
        sub.close()
    assert [p["time"] for p in plain] == [f"2026-11-25T08:0{m}:00.000Z" for m in range(1, 6)]
    assert all(2.0 < p["value"] < 8.0 for p in plain)
    assert [c["fCnt"] for c in chirp] == [1, 2, 3, 4, 5]
    assert [datetime.fromisoformat(c["time"]) for c in chirp][-1] == T0 + timedelta(minutes=5)
    assert next(x["Time"] for x in tasmota) == "2026-11-25T09:01:00"  # Paris, no offset
    assert all(set(s) == {"id", "tC", "tF"} for s in shelly)
    stats = fleet.stats
    assert all(s.acked == 5 and s.dropped == 0 for s in stats.values())


async def test_probe_faults_as_each_device_reports_them(mqtt_url: str) -> None:
    site, clock = unique_site(), ManualClock(T0)
    sub = Subscriber(mqtt_url, "#")
    t = topics(site)
    try:
        async with fleet_on(mqtt_url, site, clock) as fleet:
            for unit in fleet.runtime.models.values():
                unit.start_fault(Fault.SENSOR_FAILURE)
            clock.advance(timedelta(minutes=2))
            fleet.step()
            plain = [json.loads(p) for p in await sub.wait_for(t["plain"], 2)]
            shelly = [json.loads(p) for p in await sub.wait_for(t["shelly"], 2)]
            for unit in fleet.runtime.models.values():
                unit.end_fault(Fault.SENSOR_FAILURE)
                unit.start_fault(Fault.SENSOR_SILENT)
            clock.advance(timedelta(minutes=3))
            fleet.step()
            async with asyncio.timeout(10):
                await fleet.wait_delivered()
            await asyncio.sleep(0.2)
            silent_counts = {uid: s.silent for uid, s in fleet.stats.items()}
    finally:
        sub.close()
    assert [(p["value"], p["quality"]) for p in plain] == [(None, "bad"), (None, "bad")]
    assert [s["errors"] for s in shelly] == [["read"], ["read"]]
    assert sub.on(t["tasmota"]) == []
    assert sub.on(t["chirp"]) == []
    assert len(sub.on(t["plain"])) == 2  # and nothing more while silent
    assert silent_counts == {"plain": 3, "chirp": 3, "tasmota": 3, "shelly": 3}


async def test_malformed_payloads_on_the_loggers_own_topics(mqtt_url: str) -> None:
    site, clock = unique_site(), ManualClock(T0)
    sub = Subscriber(mqtt_url, "#")
    t = topics(site)
    try:
        async with fleet_on(mqtt_url, site, clock) as fleet:
            sent = [
                fleet.publish_malformed("plain", Malformed.NOT_JSON),
                fleet.publish_malformed("tasmota", Malformed.TRUNCATED),
                fleet.publish_malformed("shelly", Malformed.WRONG_TYPE),
                fleet.publish_malformed("chirp", Malformed.BAD_BASE64),
            ]
            with pytest.raises(MalformedKindError):
                fleet.publish_malformed("plain", Malformed.SHORT_FRAME)
            got = [
                (await sub.wait_for(t[name], 1))[0]
                for name in ("plain", "tasmota", "shelly", "chirp")
            ]
    finally:
        sub.close()
    assert got == [m.payload for m in sent]
    assert [m.topic for m in sent] == [t["plain"], t["tasmota"], t["shelly"], t["chirp"]]


async def test_broker_outage_backlog_is_sent_in_order_and_tasmota_skips(
    own_broker: MosquittoService,
) -> None:
    site, clock = unique_site(), ManualClock(T0)
    t = topics(site)
    sub = Subscriber(own_broker.url, "#")
    try:
        async with fleet_on(own_broker.url, site, clock) as fleet:
            clock.advance(timedelta(minutes=2))
            fleet.step()
            async with asyncio.timeout(10):
                await fleet.wait_delivered()
            await asyncio.to_thread(own_broker.stop)
            await until(lambda: not fleet.connected("plain"))
            clock.advance(timedelta(minutes=10))  # ten readings taken while the broker is away
            fleet.step()
            assert fleet.pending("plain") == 10
            assert fleet.stats["tasmota"].skipped_offline == 10
            await asyncio.to_thread(own_broker.start)
            async with asyncio.timeout(15):
                await fleet.wait_connected()
                await fleet.wait_delivered()
            plain = [json.loads(p) for p in await sub.wait_for(t["plain"], 12)]
            chirp = [json.loads(p) for p in await sub.wait_for(t["chirp"], 12)]
            await asyncio.sleep(0.2)
            tasmota = [json.loads(p) for p in sub.on(t["tasmota"])]
    finally:
        sub.close()
    # In order and without a gap. QoS 1 is at-least-once: a message in flight when the broker
    # went down may arrive twice, so compare first occurrences.
    expected = [T0 + timedelta(minutes=m) for m in range(1, 13)]
    firsts = list(dict.fromkeys(datetime.fromisoformat(p["time"]) for p in plain))
    assert firsts == expected
    assert list(dict.fromkeys(c["fCnt"] for c in chirp)) == list(range(1, 13))
    # Tasmota sends telemetry only while connected: nothing from the outage.
    assert sorted({x["Time"] for x in tasmota}) == ["2026-11-25T09:01:00", "2026-11-25T09:02:00"]


async def test_full_backlog_drops_the_oldest(own_broker: MosquittoService) -> None:
    tag = uuid.uuid4().hex[:8]
    logger = MqttLogger(shape=Shape.PLAIN, device_id=f"t-{tag}", backlog_limit=3)
    site = SiteSpec(
        site_id=f"site-{tag}",
        units=(UnitSpec(unit_id="u", name="u", profile=UnitProfile.FREEZER, logger=logger),),
    )
    clock = ManualClock(T0)
    sub = Subscriber(own_broker.url, f"coldtrace/site-{tag}/#")
    try:
        async with fleet_on(own_broker.url, site, clock) as fleet:
            await asyncio.to_thread(own_broker.stop)
            await until(lambda: not fleet.connected("u"))
            clock.advance(timedelta(minutes=5))
            fleet.step()
            assert fleet.stats["u"].dropped == 2
            await asyncio.to_thread(own_broker.start)
            async with asyncio.timeout(15):
                await fleet.wait_connected()
                await fleet.wait_delivered()
            got = await sub.wait_for(f"coldtrace/site-{tag}/t-{tag}/reading", 3)
    finally:
        sub.close()
    times = list(dict.fromkeys(json.loads(p)["time"] for p in got))
    assert times == [
        "2026-11-25T08:03:00.000Z",
        "2026-11-25T08:04:00.000Z",
        "2026-11-25T08:05:00.000Z",
    ]


async def test_background_ticks_follow_an_accelerated_clock(mqtt_url: str) -> None:
    site = unique_site(plain=timedelta(seconds=30))
    clock = ManualClock(T0)
    runtime = SiteRuntime(site, start=T0)
    config = MqttSimConfig(broker=mqtt_url, tick=timedelta(milliseconds=20))
    async with MqttLoggerFleet(config, runtime, clock) as fleet:
        clock.advance(timedelta(minutes=2))
        await until(lambda: fleet.stats["plain"].sampled >= 4)
        assert fleet.stats["shelly"].sampled == 2
        assert runtime.time == T0 + timedelta(minutes=2)
