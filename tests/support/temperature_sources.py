"""Helpers for the MQTT and OPC-UA source tests: a QoS 1 publisher and a record collector."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from edge.sources.mqtt import MqttSourceConfig
from protocols.payloads import DecoderSpec
from protocols.records import DeadLetter, DeviceStatus, Reading, Record


def broker_address(mqtt_url: str) -> tuple[str, int]:
    parts = urlsplit(mqtt_url)
    return parts.hostname or "127.0.0.1", parts.port or 1883


def publish(
    mqtt_url: str,
    messages: Sequence[tuple[str, bytes | str]],
    retain: bool = False,
    protocol: MQTTProtocolVersion = paho.MQTTv5,
) -> None:
    """Publishes at QoS 1 and returns once the broker acknowledged every message."""
    host, port = broker_address(mqtt_url)
    client = paho.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=f"test-pub-{uuid.uuid4().hex[:8]}",
        protocol=protocol,
    )
    client.connect(host, port)
    client.loop_start()
    try:
        infos = [
            client.publish(topic, payload, qos=1, retain=retain) for topic, payload in messages
        ]
        for info in infos:
            info.wait_for_publish(timeout=10)
            assert info.is_published()
    finally:
        client.disconnect()
        client.loop_stop()


async def apublish(
    mqtt_url: str,
    messages: Sequence[tuple[str, bytes | str]],
    retain: bool = False,
    protocol: MQTTProtocolVersion = paho.MQTTv5,
) -> None:
    await asyncio.to_thread(publish, mqtt_url, messages, retain, protocol)


def mqtt_config(
    mqtt_url: str, prefix: str, client_id: str | None = None, **extra: object
) -> MqttSourceConfig:
    """A source reading every payload format under ``<prefix>/``."""
    values: dict[str, object] = {
        "name": "broker-1",
        "broker_url": mqtt_url,
        "client_id": client_id or f"ct-test-{uuid.uuid4().hex[:10]}",
        "backoff_initial": timedelta(milliseconds=50),
        "backoff_max": timedelta(milliseconds=400),
        # Long enough for the restart tests; short so the shared broker does not keep queueing
        # for sessions of finished tests.
        "session_expiry": timedelta(minutes=2),
        "decoders": (
            DecoderSpec(topic=f"{prefix}/{{site}}/readings", format="coldtrace-json"),
            DecoderSpec(
                topic=f"{prefix}/tele/{{device}}/SENSOR",
                format="tasmota",
                sensor_id="{device}/{sensor}",
                timezone="Europe/Berlin",
            ),
            DecoderSpec(topic=f"{prefix}/application/+/device/+/event/up", format="chirpstack-v4"),
            DecoderSpec(
                topic=f"{prefix}/{{device}}/status/temperature:0",
                format="shelly-gen2",
                sensor_id="{device}",
            ),
        ),
    }
    values.update(extra)
    return MqttSourceConfig.model_validate(values)


def json_reading(i: int, sensor: str = "fridge-1/t") -> str:
    """Our JSON shape; the value encodes ``i`` so tests can count gaps and duplicates."""
    minute, second = divmod(i, 60)
    return (
        f'{{"sensor_id": "{sensor}", "time": "2026-03-01T12:{minute % 60:02d}:{second:02d}Z", '
        f'"value": {4 + i / 10000}, "unit": "degC"}}'
    )


def index_of(reading: Reading) -> int:
    assert reading.value is not None
    return round((reading.value - 4) * 10000)


@dataclass
class Collected:
    records: list[Record] = field(default_factory=list)

    @property
    def readings(self) -> list[Reading]:
        return [r for r in self.records if isinstance(r, Reading)]

    @property
    def dead_letters(self) -> list[DeadLetter]:
        return [r for r in self.records if isinstance(r, DeadLetter)]

    @property
    def statuses(self) -> list[DeviceStatus]:
        return [r for r in self.records if isinstance(r, DeviceStatus)]


async def collect_until(
    source: AsyncIterator[tuple[Record, ...]],
    into: Collected,
    readings: int,
    limit: float = 10.0,
) -> Collected:
    """Consumes (and so acknowledges) tuples until ``readings`` readings were seen."""
    async with asyncio.timeout(limit):
        while len(into.readings) < readings:
            into.records.extend(await anext(source))
    return into


async def wait_status(
    source: AsyncIterator[tuple[Record, ...]],
    into: Collected,
    state: object,
    limit: float = 10.0,
) -> DeviceStatus:
    """Consumes tuples until a DeviceStatus with ``state`` arrives; returns it."""
    async with asyncio.timeout(limit):
        while True:
            batch = await anext(source)
            into.records.extend(batch)
            for record in batch:
                if isinstance(record, DeviceStatus) and record.state == state:
                    return record


async def settle(source: AsyncIterator[tuple[Record, ...]], quiet: float = 0.3) -> None:
    """Resumes the source (so the last tuple is acknowledged, as a consumer waiting for more
    would) and checks that nothing else arrives for ``quiet`` seconds."""
    while True:
        try:
            extra = await asyncio.wait_for(anext(source), quiet)
        except TimeoutError:
            return
        data = [r for r in extra if not isinstance(r, DeviceStatus)]
        if data:
            raise AssertionError(f"unexpected records: {data}")


# ------------------------------------------------------------------ OPC-UA


TEST_NAMESPACE = "urn:coldtrace:test"


class TcpPipe:
    """A loopback TCP relay that can freeze (stop forwarding, keep sockets open), as a hung
    server or a black-holed network does."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.flowing = asyncio.Event()
        self.flowing.set()
        self.accepting = True
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: list[asyncio.StreamWriter] = []

    @property
    def port(self) -> int:
        assert self._server is not None
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def __aenter__(self) -> TcpPipe:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    def cut(self) -> None:
        """Drops every relayed connection, as a network outage does; new connections are
        refused until ``accepting`` is set again."""
        self.accepting = False
        for writer in self._writers:
            writer.transport.abort()
        self._writers.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.accepting:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._writers += [writer, up_writer]
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._copy(src, dst))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _copy(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while data := await src.read(65536):
                await self.flowing.wait()
                dst.write(data)
                await dst.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            dst.close()
