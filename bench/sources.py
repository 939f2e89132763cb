"""Temperature sources: readings per second and CPU seconds per 1,000 readings.

MQTT (a Mosquitto of the benchmark's own, configured as the private test broker, so other
work on the shared broker neither disturbs the figures nor has to queue these messages): N
messages of our JSON shape are queued in a persistent session while
the consumer is away, then drained; compared in the same run with the decoder alone (no I/O) and
a raw paho subscriber (QoS 1, automatic PUBACK, no decoding). The source's figure includes the
manual acknowledgement after each message is "committed" (here: appended to a list).

OPC-UA (in-process asyncua server): one writer task updates K variables with new source
timestamps as fast as it can for a fixed time; compared with a raw asyncua subscription
(iterator mode) reading the same server. Server and client share this process, so CPU figures
include the server's share; the ratio between the two lines is what to look at.

    .venv/bin/python bench/sources.py [--messages 20000] [--seconds 4] [--nodes 20]

It prints figures and never fails on timing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast
from urllib.parse import urlsplit

import paho.mqtt.client as paho
from asyncua import ua
from asyncua.client.client import Client
from asyncua.common.subscription import DataChangeEvent
from asyncua.server.server import Server
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from coldtrace.devservices import MosquittoService, free_port
from edge.sources.mqtt import MqttSource, MqttSourceConfig
from edge.sources.opcua import OpcUaEndpointConfig, OpcUaSource
from protocols.payloads import DecoderSpec, PayloadRouter
from protocols.records import Reading

T0 = datetime(2026, 3, 1, tzinfo=UTC)


class Meter:
    def __init__(self) -> None:
        self.wall = time.perf_counter()
        self.cpu = time.process_time()

    def line(self, label: str, count: int) -> str:
        wall = time.perf_counter() - self.wall
        cpu = time.process_time() - self.cpu
        rate = count / wall if wall else float("inf")
        per_k = cpu / count * 1000 if count else float("nan")
        return f"  {label:<44} {count:>7} in {wall:6.2f} s  {rate:>9,.0f}/s  {per_k:7.3f} CPU s/1k"


def payload(i: int) -> bytes:
    t = T0 + timedelta(seconds=i)
    return (
        f'{{"sensor_id": "fridge-{i % 50}/t", "time": "{t.isoformat()}", '
        f'"value": {4 + (i % 100) / 100}, "unit": "degC"}}'
    ).encode()


def mqtt_client(client_id: str, *, manual_ack: bool = False) -> paho.Client:
    return paho.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=paho.MQTTv5,
        manual_ack=manual_ack,
    )


def session_props() -> Properties:
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 600
    return props


def publish_all(host: str, port: int, topic: str, count: int) -> None:
    client = mqtt_client(f"bench-pub-{uuid.uuid4().hex[:8]}")
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect(host, port)
    client.loop_start()
    infos = [client.publish(topic, payload(i), qos=1) for i in range(count)]
    for info in infos:
        info.wait_for_publish(timeout=60)
    client.disconnect()
    client.loop_stop()


def register_session(host: str, port: int, client_id: str, topic: str) -> None:
    """Connects once with a persistent session and subscribes, so messages queue while away."""
    done = threading.Event()
    client = mqtt_client(client_id)
    client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
    client.on_subscribe = lambda c, u, mid, rcs, p: done.set()
    client.connect(host, port, clean_start=False, properties=session_props())
    client.loop_start()
    done.wait(10)
    client.disconnect()
    client.loop_stop()


def raw_drain(host: str, port: int, client_id: str, topic: str, count: int) -> str:
    got = 0
    finished = threading.Event()

    def on_message(client: paho.Client, userdata: object, msg: paho.MQTTMessage) -> None:
        nonlocal got
        got += 1
        if got >= count:
            finished.set()

    client = mqtt_client(client_id)
    client.on_message = on_message
    client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
    meter = Meter()
    client.connect(host, port, clean_start=False, properties=session_props())
    client.loop_start()
    finished.wait(120)
    line = meter.line("raw paho subscriber (QoS 1, auto ack)", got)
    client.disconnect()
    client.loop_stop()
    return line


async def source_drain(url: str, client_id: str, topic: str, count: int) -> str:
    config = MqttSourceConfig(
        broker_url=url,
        client_id=client_id,
        in_flight=1000,
        decoders=(DecoderSpec(topic=topic, format="coldtrace-json"),),
    )
    committed: list[object] = []
    meter = Meter()
    async with MqttSource(config) as source:
        async for records in source:
            committed.extend(r for r in records if isinstance(r, Reading))
            if len(committed) >= count:
                break
    return meter.line("MqttSource (decode + manual ack on resume)", len(committed))


async def bench_mqtt(count: int) -> None:
    url = os.environ.get("COLDTRACE_TEST_MQTT_URL")
    if url:
        await mqtt_runs(url, count)
        return
    directory, broker = await asyncio.to_thread(own_broker)
    try:
        await mqtt_runs(await asyncio.to_thread(broker.start), count)
    finally:
        await asyncio.to_thread(broker.stop)
        await asyncio.to_thread(shutil.rmtree, directory, ignore_errors=True)


def own_broker() -> tuple[Path, MosquittoService]:
    """A Mosquitto configured as the private test broker, in a folder of its own."""
    directory = Path(tempfile.mkdtemp(prefix="coldtrace-bench-mqtt-", dir="/var/tmp"))
    directory.chmod(0o755)
    return directory, MosquittoService(directory, MosquittoService.default().user)


async def mqtt_runs(url: str, count: int) -> None:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 1883
    print(f"MQTT, {count} messages queued in a persistent session, then drained ({url})")

    router = PayloadRouter([DecoderSpec(topic="bench/+/readings", format="coldtrace-json")])
    payloads = [payload(i) for i in range(count)]
    meter = Meter()
    decoded = sum(len(router.decode("bench/x/readings", p, T0)) for p in payloads)
    print(meter.line("decoder alone (PayloadRouter.decode)", decoded))

    for label in ("raw", "source"):
        topic = f"bench/{uuid.uuid4().hex[:8]}/readings"
        client_id = f"bench-{label}-{uuid.uuid4().hex[:8]}"
        await asyncio.to_thread(register_session, host, port, client_id, topic)
        await asyncio.to_thread(publish_all, host, port, topic, count)
        if label == "raw":
            print(await asyncio.to_thread(raw_drain, host, port, client_id, topic, count))
        else:
            print(await source_drain(url, client_id, topic, count))


async def opcua_server(nodes: int) -> tuple[Server, int, list[ua.NodeId]]:
    port = free_port()
    server = Server()
    await server.init()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{port}/")
    ns = await server.register_namespace("urn:coldtrace:bench")
    ids = []
    for i in range(nodes):
        node_id = ua.NodeId(ua.String(f"unit-{i}.Temperature"), ua.Int16(ns))
        await server.nodes.objects.add_variable(node_id, ua.QualifiedName(f"t{i}", ns), 0.0)
        ids.append(node_id)
    await server.start()
    return server, port, ids


async def write_for(server: Server, ids: list[ua.NodeId], seconds: float) -> int:
    """Writes every node in turn, each with a new source timestamp, for ``seconds``."""
    deadline = time.perf_counter() + seconds
    writes = 0
    while time.perf_counter() < deadline:
        for node_id in ids:
            stamp = cast(ua.DateTime, T0 + timedelta(milliseconds=writes))
            value = ua.DataValue(
                Value=ua.Variant(4.0 + writes % 100 / 100, ua.VariantType.Double),
                SourceTimestamp=stamp,
                ServerTimestamp=stamp,
            )
            await server.write_attribute_value(node_id, value)
            writes += 1
        await asyncio.sleep(0)
    return writes


async def raw_opcua(endpoint: str, server: Server, ids: list[ua.NodeId], seconds: float) -> str:
    count = 0
    async with Client(endpoint) as client:
        params = ua.CreateSubscriptionParameters(
            RequestedPublishingInterval=20,
            RequestedLifetimeCount=100,
            RequestedMaxKeepAliveCount=10,
            MaxNotificationsPerPublish=0,
            PublishingEnabled=True,
        )
        sub = await client.create_subscription(params, queue_maxsize=1_000_000)
        await sub.subscribe_data_change(
            [client.get_node(i) for i in ids], queuesize=1000, sampling_interval=ua.Double(0)
        )
        meter = Meter()
        writer = asyncio.create_task(write_for(server, ids, seconds))
        while True:
            event = await sub.next_event(timeout=0.5)
            if event is None:
                if writer.done():
                    break
                continue
            if isinstance(event, DataChangeEvent):
                count += 1
        writes = await writer
        return meter.line(f"raw asyncua subscription ({writes} writes)", count)


async def source_opcua(endpoint: str, server: Server, ids: list[ua.NodeId], seconds: float) -> str:
    config = OpcUaEndpointConfig(
        name="bench",
        endpoint=endpoint,
        nodes={i.to_string(): f"unit-{n}/t" for n, i in enumerate(ids)},
        sampling_interval=timedelta(0),
        publishing_interval=timedelta(milliseconds=20),
        queue_size=1000,
        handoff_size=1_000_000,
        keepalive_count=10,
        watchdog=timedelta(seconds=5),
    )
    count = 0
    async with OpcUaSource(config) as source:
        records = aiter(source)
        while not any(r.kind == "device_status" for r in await anext(records)):
            pass
        meter = Meter()
        writer = asyncio.create_task(write_for(server, ids, seconds))
        while True:
            try:
                batch = await asyncio.wait_for(anext(records), 0.5)
            except TimeoutError:
                if writer.done():
                    break
                continue
            count += sum(1 for r in batch if isinstance(r, Reading))
        writes = await writer
        return meter.line(f"OpcUaSource ({writes} writes)", count)


async def bench_opcua(nodes: int, seconds: float) -> None:
    print(f"OPC-UA, in-process server, {nodes} nodes written for {seconds:g} s per line")
    for run in (raw_opcua, source_opcua):
        server, port, ids = await opcua_server(nodes)
        try:
            print(await run(f"opc.tcp://127.0.0.1:{port}/", server, ids, seconds))
        finally:
            await server.stop()


async def main(args: argparse.Namespace) -> None:
    steps: list[Callable[[], Awaitable[None]]] = [
        lambda: bench_mqtt(args.messages),
        lambda: bench_opcua(args.nodes, args.seconds),
    ]
    for step in steps:
        await step()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--nodes", type=int, default=20)
    asyncio.run(main(parser.parse_args()))
