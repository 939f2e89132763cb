"""Independent witnesses of what the simulators published, to compare with the database.

The witnesses do not go through the edge agent: ``MqttWitness`` is a plain paho subscriber of
its own (QoS 1 on one connection that stays up, so the broker hands it every message the loggers
published) and ``OpcUaWitness`` a plain asyncua subscription on the simulator's probes with the
*StatusValueTimestamp* trigger (every write of the simulator is a data change). What they saw is
decoded into ``(sensor_id, device time)`` pairs with the same payload decoders the edge is
configured with, so the comparison with the ``readings`` table is exact.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

import paho.mqtt.client as paho
from asyncua import ua
from asyncua.client.client import Client
from asyncua.ua.attribute_ids import AttributeIds
from paho.mqtt.enums import CallbackAPIVersion

from protocols.payloads import DecoderSpec, PayloadRouter
from protocols.records import Reading

Key = tuple[str, datetime]
"""A reading's identity: sensor id and device time."""


class MqttWitness:
    """Subscribes (QoS 1) to ``topics`` and keeps every message, decoded on demand."""

    def __init__(self, mqtt_url: str, specs: Sequence[DecoderSpec]) -> None:
        parts = urlsplit(mqtt_url)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 1883
        self._router = PayloadRouter(specs)
        self._messages: list[tuple[str, bytes, float]] = []  # topic, payload, monotonic arrival
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self._client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"e2e-witness-{uuid.uuid4().hex[:10]}",
            protocol=paho.MQTTv5,
        )
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message

    def _on_connect(self, client: paho.Client, *_: Any) -> None:
        client.subscribe([(topic, 1) for topic in self._router.subscriptions])

    def _on_subscribe(self, *_: Any) -> None:
        self._subscribed.set()

    def _on_message(self, client: paho.Client, userdata: object, msg: paho.MQTTMessage) -> None:
        with self._lock:
            self._messages.append((msg.topic, bytes(msg.payload), time.monotonic()))

    async def __aenter__(self) -> Self:
        self._client.connect(self._host, self._port)
        self._client.loop_start()
        if not await asyncio.to_thread(self._subscribed.wait, 10):
            raise AssertionError("MQTT witness: no SUBACK within 10 s")
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._client.disconnect()
        await asyncio.to_thread(self._client.loop_stop)  # joins paho's network thread

    @property
    def messages(self) -> int:
        with self._lock:
            return len(self._messages)

    def readings(self, first: float = 0.0, last: float = float("inf")) -> list[Reading]:
        """The readings in the messages seen (arrived between two ``time.monotonic()`` instants,
        by default all of them); a message the decoders refuse fails the test."""
        with self._lock:
            seen = [(t, p) for t, p, at in self._messages if first <= at <= last]
        now = datetime.now(UTC)
        out: list[Reading] = []
        for topic, payload in seen:
            for record in self._router.decode(topic, payload, now):
                assert isinstance(record, Reading), f"witness could not decode {topic}: {record}"
                out.append(record)
        return out


class _Handler:
    def __init__(self, sensors: dict[str, str]) -> None:
        self.sensors = sensors
        self.seen: list[Key] = []
        self.arrived: list[float] = []  # monotonic arrival time of each entry of ``seen``
        self.bad: list[str] = []

    def datachange_notification(self, node: Any, val: object, data: Any) -> None:
        value: ua.DataValue = data.monitored_item.Value
        sensor = self.sensors[node.nodeid.to_string()]
        if value.SourceTimestamp is None:
            self.bad.append(f"{sensor}: no source timestamp")
            return
        self.seen.append((sensor, value.SourceTimestamp.replace(tzinfo=UTC)))
        self.arrived.append(time.monotonic())


class OpcUaWitness:
    """A subscription of its own on the simulator's probes (NodeId string -> sensor id)."""

    def __init__(self, endpoint: str, nodes: dict[str, str]) -> None:
        self._client = Client(endpoint, timeout=5)
        self._handler = _Handler(nodes)
        self._nodes = nodes

    async def __aenter__(self) -> Self:
        await self._client.connect()
        params = ua.CreateSubscriptionParameters()
        params.RequestedPublishingInterval = 100
        params.RequestedLifetimeCount = 3000
        params.RequestedMaxKeepAliveCount = 100
        params.PublishingEnabled = True
        subscription = await self._client.create_subscription(params, self._handler)
        requests = []
        for handle, node_id in enumerate(self._nodes, start=1):
            item = ua.ReadValueId()
            item.NodeId = ua.NodeId.from_string(node_id)
            item.AttributeId = ua.UInt32(AttributeIds.Value)
            monitoring = ua.MonitoringParameters()
            monitoring.ClientHandle = handle
            monitoring.SamplingInterval = 0
            monitoring.QueueSize = 1000
            monitoring.DiscardOldest = True
            monitoring.Filter = ua.DataChangeFilter(
                Trigger=ua.DataChangeTrigger.StatusValueTimestamp
            )
            request = ua.MonitoredItemCreateRequest()
            request.ItemToMonitor = item
            request.MonitoringMode = ua.MonitoringMode.Reporting
            request.RequestedParameters = monitoring
            requests.append(request)
        results = await subscription.create_monitored_items(requests)
        assert all(not isinstance(r, ua.StatusCode) for r in results), results
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._client.disconnect()

    def keys(self) -> list[Key]:
        assert not self._handler.bad, self._handler.bad
        return list(self._handler.seen)

    def arrived_between(self, first: float, last: float) -> set[Key]:
        """Values that reached the witness between two ``time.monotonic()`` instants."""
        pairs = zip(self._handler.seen, self._handler.arrived, strict=True)
        return {key for key, at in pairs if first <= at <= last}

    def last_arrival(self) -> float:
        """When (``time.monotonic()``) the last value reached the witness."""
        return max(self._handler.arrived, default=0.0)


async def settle(count: Any, within: float = 5.0, quiet: float = 0.6) -> None:
    """Waits until ``count()`` has not changed for ``quiet`` seconds (bounded by ``within``)."""
    deadline = time.monotonic() + within
    last, since = count(), time.monotonic()
    while time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        now = count()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
