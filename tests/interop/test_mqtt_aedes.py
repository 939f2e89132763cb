"""The MQTT source against an independent broker: aedes (tests/interop/mqtt-broker, version
pinned by its package-lock.json, installed by ``make interop-deps``), not Mosquitto.

aedes speaks MQTT 3.1.1 only (it refuses MQTT 5 with CONNACK "unsupported protocol version"),
so the source is configured as such a site configures it: ``mqtt_version: "3.1.1"``, through
the agent's own configuration file. aedes runs with its default in-memory persistence: its
sessions, subscriptions and queued messages live as long as its process and no longer.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
import shutil
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as paho
import pytest

from coldtrace.devservices import free_port
from edge.config import load_config
from edge.sources.base import PermanentSourceError
from edge.sources.mqtt import MqttSource, MqttSourceConfig
from protocols.records import DeviceState
from tests.support.temperature_sources import (
    Collected,
    TcpPipe,
    apublish,
    collect_until,
    index_of,
    json_reading,
    settle,
    wait_status,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

BROKER_DIR = Path(__file__).parent / "mqtt-broker"


def _node() -> str:
    node = shutil.which("node")
    if node is None or not (BROKER_DIR / "node_modules" / "aedes").is_dir():
        pytest.fail("aedes is not installed: run `make interop-deps` (npm ci)")
    return node


@dataclass
class Aedes:
    """One aedes broker process; ``publish`` makes the broker itself publish."""

    process: asyncio.subprocess.Process
    port: int

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    async def publish(self, topic: str, payload: bytes | str) -> None:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        data = payload.encode() if isinstance(payload, str) else payload
        line = f"publish {topic} 1 {base64.b64encode(data).decode()}\n"
        self.process.stdin.write(line.encode())
        await self.process.stdin.drain()
        assert await asyncio.wait_for(self.process.stdout.readline(), 10) == b"OK\n"

    async def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        await self.process.wait()


async def start_aedes(port: int) -> Aedes:
    process = await asyncio.create_subprocess_exec(
        _node(),
        str(BROKER_DIR / "broker.mjs"),
        str(port),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        cwd=BROKER_DIR,
    )
    assert process.stdout is not None
    try:
        async with asyncio.timeout(30):
            while not (line := await process.stdout.readline()).startswith(b"READY"):
                if not line:
                    raise RuntimeError("aedes exited before it was ready")
    except BaseException:
        process.kill()
        await process.wait()
        raise
    return Aedes(process, port)


@pytest.fixture
async def aedes() -> AsyncIterator[Aedes]:
    broker = await start_aedes(free_port())
    try:
        yield broker
    finally:
        await broker.kill()


@pytest.fixture
def prefix() -> str:
    return f"ct-{uuid.uuid4().hex[:10]}"


SITE_CONFIG = """\
gateway_id: gw-interop-1
cloud: {{cloud_url: "https://cloud.example", token: not-used}}
mqtt:
  - name: site-broker
    broker_url: {url}
    client_id: gw-interop-1-{client}
    mqtt_version: "3.1.1"
    backoff_initial: PT0.05S
    backoff_max: PT0.4S
    max_payload_bytes: 4096
    decoders:
      - {{topic: "{prefix}/{{site}}/readings", format: coldtrace-json}}
      - {{topic: "{prefix}/application/+/device/+/event/up", format: chirpstack-v4}}
      - topic: "{prefix}/tele/{{device}}/SENSOR"
        format: tasmota
        sensor_id: "{{device}}/{{sensor}}"
        timezone: Europe/Berlin
      - topic: "{prefix}/{{device}}/status/temperature:0"
        format: shelly-gen2
        sensor_id: "{{device}}"
"""


def site_config(tmp_path: Path, url: str, prefix: str) -> MqttSourceConfig:
    """The source's configuration as a site writes it: the agent's YAML file, loaded by it."""
    path = tmp_path / "edge.yaml"
    client = uuid.uuid4().hex[:8]
    path.write_text(SITE_CONFIG.format(url=url, prefix=prefix, client=client), encoding="utf-8")
    (config,) = load_config(path).mqtt
    return config


async def publish_311(url: str, messages: list[tuple[str, bytes | str]]) -> None:
    """An independent publisher (paho, MQTT 3.1.1, QoS 1): returns once aedes has acked all."""
    await apublish(url, messages, protocol=paho.MQTTv311)


async def test_mqtt_5_is_refused_by_aedes_with_a_hint_to_configure_3_1_1(
    aedes: Aedes, tmp_path: Path, prefix: str
) -> None:
    config = site_config(tmp_path, aedes.url, prefix).model_copy(update={"mqtt_version": "5"})
    with pytest.raises(PermanentSourceError, match=re.escape("set mqtt_version: 3.1.1")):
        async with MqttSource(config):
            pass


async def test_every_format_from_an_independent_publisher_and_the_broker_arrives_once(
    aedes: Aedes, tmp_path: Path, prefix: str
) -> None:
    em300 = base64.b64encode(bytes.fromhex("01755C03672E00046865")).decode()
    from_paho: list[tuple[str, bytes | str]] = [
        (f"{prefix}/site-1/readings", json_reading(1)),
        (
            f"{prefix}/tele/fridge-3/SENSOR",
            '{"Time":"2026-01-15T09:30:00","DS18B20":{"Id":"01144A0CB2AA","Temperature":4.6},'
            '"TempUnit":"C"}',
        ),
        (
            f"{prefix}/application/1/device/24e124136b502217/event/up",
            '{"time": "2026-03-01T12:00:00Z", "deviceInfo": {"devEui": "24e124136b502217"},'
            f' "fPort": 85, "data": "{em300}"}}',
        ),
        (f"{prefix}/shellyplusht-1/status/temperature:0", '{"id":0,"tC":5.5,"tF":41.9}'),
        (f"{prefix}/site-1/readings", f"[{json_reading(2)}, {json_reading(3)}]"),
    ]
    got = Collected()
    async with MqttSource(site_config(tmp_path, aedes.url, prefix)) as source:
        records = aiter(source)
        online = await wait_status(records, got, DeviceState.ONLINE)
        assert online.device_id == "site-broker"
        await publish_311(aedes.url, from_paho)
        await aedes.publish(f"{prefix}/site-2/readings", json_reading(4))
        await aedes.publish(f"{prefix}/shellyplusht-2/status/temperature:0", '{"id":0,"tC":6}')
        await collect_until(records, got, readings=9)
        await settle(records)
    assert sorted((r.sensor_id, r.value) for r in got.readings) == sorted(
        [
            ("fridge-1/t", 4.0001),
            ("fridge-3/01144A0CB2AA", 4.6),
            ("24e124136b502217", 4.6),
            ("24e124136b502217/rh", 50.5),
            ("shellyplusht-1", 5.5),
            ("fridge-1/t", 4.0002),
            ("fridge-1/t", 4.0003),
            ("fridge-1/t", 4.0004),
            ("shellyplusht-2", 6.0),
        ]
    )
    assert got.dead_letters == []


async def test_broker_restart_loses_its_in_memory_session_which_the_source_reports(
    aedes: Aedes, tmp_path: Path, prefix: str
) -> None:
    """aedes' default persistence is memory: a restart forgets our session, its subscriptions
    and the QoS 1 messages it had not been acknowledged for. What it can guarantee, and what is
    asserted: every message committed before the kill arrived once; the source reports offline,
    then ``degraded`` (session lost), having resubscribed; every message published after that
    arrives once; and the messages that were in flight at the kill are gone (none arrives)."""
    topic = f"{prefix}/s/readings"
    got = Collected()
    async with MqttSource(site_config(tmp_path, aedes.url, prefix)) as source:
        records = aiter(source)
        await wait_status(records, got, DeviceState.ONLINE)
        await publish_311(aedes.url, [(topic, json_reading(i)) for i in range(40)])
        # Mid-stream: 20 committed, the rest delivered or queued but not acknowledged.
        await collect_until(records, got, readings=20)
        await aedes.kill()
        offline = await wait_status(records, got, DeviceState.OFFLINE)
        assert "lost" in offline.detail or "cannot connect" in offline.detail
        restarted = await start_aedes(aedes.port)
        try:
            degraded = await wait_status(records, got, DeviceState.DEGRADED, limit=15)
            assert "lost our session" in degraded.detail
            await publish_311(restarted.url, [(topic, json_reading(i)) for i in range(100, 130)])
            after = Collected()
            await collect_until(records, after, readings=30)
            await settle(records, quiet=1.0)
        finally:
            await restarted.kill()
    # Messages the network thread had read before the kill are still handed over (they are
    # real readings): a gap-free prefix, each once. The rest of 0..39 died with the broker.
    before = [index_of(r) for r in got.readings]
    assert len(before) >= 20
    assert before == list(range(len(before)))
    assert [index_of(r) for r in after.readings] == list(range(100, 130))


async def test_messages_published_while_our_connection_was_cut_arrive_after_the_reconnect(
    aedes: Aedes, tmp_path: Path, prefix: str
) -> None:
    """The documented promise: a persistent session (clean_session false with 3.1.1) and QoS 1
    subscriptions, so what is published while the gateway is away is delivered when it comes
    back, once, as long as the broker keeps the session (aedes keeps it while it runs)."""
    topic = f"{prefix}/s/readings"
    got = Collected()
    async with TcpPipe(aedes.port) as pipe:
        via_pipe = f"mqtt://127.0.0.1:{pipe.port}"
        async with MqttSource(site_config(tmp_path, via_pipe, prefix)) as source:
            records = aiter(source)
            await wait_status(records, got, DeviceState.ONLINE)
            await publish_311(aedes.url, [(topic, json_reading(i)) for i in range(10)])
            # The 10th is yielded but its PUBACK waits for the resume, which comes after the
            # cut: aedes must re-send it and the source recognise it as committed.
            await collect_until(records, got, readings=10)
            pipe.cut()
            await wait_status(records, got, DeviceState.OFFLINE)
            await publish_311(aedes.url, [(topic, json_reading(i)) for i in range(10, 60)])
            pipe.accepting = True
            await wait_status(records, got, DeviceState.ONLINE, limit=15)
            await collect_until(records, got, readings=60, limit=15)
            await settle(records, quiet=1.0)
    counts = Counter(index_of(r) for r in got.readings)
    assert sorted(counts) == list(range(60))
    assert max(counts.values()) == 1, [i for i, n in counts.items() if n > 1]


async def test_malformed_and_oversized_payloads_are_dead_lettered_and_the_source_goes_on(
    aedes: Aedes, tmp_path: Path, prefix: str
) -> None:
    topic = f"{prefix}/s/readings"
    oversized = b'{"sensor_id": "fridge-1/t", "pad": "' + b"x" * 8192 + b'"}'
    got = Collected()
    async with MqttSource(site_config(tmp_path, aedes.url, prefix)) as source:
        records = aiter(source)
        await wait_status(records, got, DeviceState.ONLINE)
        await publish_311(
            aedes.url,
            [(topic, json_reading(1)), (topic, b"{broken"), (topic, oversized)],
        )
        await aedes.publish(topic, b"\xff\xfe\x00")
        await publish_311(aedes.url, [(topic, json_reading(2))])
        await collect_until(records, got, readings=2)
        await settle(records)
    assert [index_of(r) for r in got.readings] == [1, 2]
    # Two publishers (paho, the broker itself): MQTT orders messages per publisher only.
    letters = {d.raw[:20]: d for d in got.dead_letters}
    assert sorted(letters) == sorted([b"{broken", oversized[:20], b"\xff\xfe\x00"])
    assert "not valid JSON" in letters[b"{broken"].reason
    assert "not UTF-8" in letters[b"\xff\xfe\x00"].reason
    too_large = letters[oversized[:20]]
    assert "4096" in too_large.reason
    assert too_large.raw == oversized[:4096]  # the first max_payload_bytes are kept


async def test_a_receipt_timed_message_whose_puback_was_cut_is_not_yielded_twice(
    aedes: Aedes, tmp_path: Path, prefix: str
) -> None:
    """A Shelly reading is timed by receipt, so only its packet id and content tell its
    re-delivery apart: aedes re-sends it on the resumed session without the DUP flag."""
    shelly = f"{prefix}/shelly-1/status/temperature:0"
    got = Collected()
    async with TcpPipe(aedes.port) as pipe:
        via_pipe = f"mqtt://127.0.0.1:{pipe.port}"
        async with MqttSource(site_config(tmp_path, via_pipe, prefix)) as source:
            records = aiter(source)
            await wait_status(records, got, DeviceState.ONLINE)
            await publish_311(aedes.url, [(shelly, '{"id":0,"tC":4.5}')])
            await collect_until(records, got, readings=1)
            pipe.cut()  # before the consumer resumes: the PUBACK cannot leave
            await wait_status(records, got, DeviceState.OFFLINE)  # resumes: committed
            pipe.accepting = True
            await wait_status(records, got, DeviceState.ONLINE, limit=15)
            await publish_311(aedes.url, [(shelly, '{"id":0,"tC":4.6}')])
            await collect_until(records, got, readings=2)
            await settle(records, quiet=1.0)
    assert [r.value for r in got.readings] == [4.5, 4.6]
