"""The broker restarts mid-stream: every reading arrives once, before or after.

The broker restarted is one of this test's own (same Mosquitto configuration as the shared
private one, in a folder of its own), so stopping it disturbs no other test running meanwhile.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable

import pytest

from coldtrace.devservices import MosquittoService
from edge.sources.mqtt import MqttSource
from protocols.records import DeviceState, Record
from tests.support.temperature_sources import (
    Collected,
    apublish,
    index_of,
    json_reading,
    mqtt_config,
    settle,
    wait_status,
)

pytestmark = pytest.mark.integration


async def consume(records: AsyncIterator[tuple[Record, ...]], into: Collected) -> None:
    async for batch in records:
        into.records.extend(batch)


async def wait_for(condition: Callable[[], bool], limit: float = 15.0) -> None:
    """Polls a condition the background consumer makes true (it has no event to wait on)."""
    async with asyncio.timeout(limit):
        while True:
            if condition():
                return
            await asyncio.sleep(0.01)


def pid_of(broker: MosquittoService) -> int | None:
    try:
        return int(broker.pidfile.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


async def stop_and_wait(broker: MosquittoService, pid: int | None) -> None:
    """Stops the broker and waits until its process is gone: Mosquitto writes its persistence
    file on SIGTERM, which can outlast MosquittoService.stop()'s own wait on a large store, and
    a new instance must not be started while the old one still holds the port."""
    await asyncio.to_thread(broker.stop)
    await gone(pid)


async def gone(pid: int | None) -> None:
    if pid is None:
        return
    async with asyncio.timeout(120):
        while True:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            await asyncio.sleep(0.05)


async def test_broker_restart_mid_stream_loses_and_duplicates_nothing(
    own_broker: MosquittoService,
) -> None:
    broker = own_broker
    mqtt_url = broker.url
    prefix = f"ct-{uuid.uuid4().hex[:10]}"
    topic = f"{prefix}/s/readings"
    got = Collected()
    async with MqttSource(mqtt_config(mqtt_url, prefix, in_flight=10)) as source:
        records = aiter(source)
        await wait_status(records, got, DeviceState.ONLINE)
        await apublish(mqtt_url, [(topic, json_reading(i)) for i in range(200)])
        consumer = asyncio.create_task(consume(records, got))
        pid = pid_of(broker)
        try:
            await wait_for(lambda: len(got.readings) >= 40)
            await stop_and_wait(broker, pid)  # SIGTERM: the broker saves its sessions
            await wait_for(lambda: any(s.state is DeviceState.OFFLINE for s in got.statuses))
            before = len(got.readings)
            await asyncio.to_thread(broker.start)
            await wait_for(lambda: got.statuses[-1].state is DeviceState.ONLINE)
            await apublish(mqtt_url, [(topic, json_reading(i)) for i in range(200, 300)])
            await wait_for(lambda: len(got.readings) >= 300)
        finally:
            consumer.cancel()
            await asyncio.gather(consumer, return_exceptions=True)
            if not broker.running():
                await gone(pid)
                await asyncio.to_thread(broker.start)
        await settle(aiter(source), quiet=0.5)
    counts = Counter(index_of(r) for r in got.readings)
    assert sorted(counts) == list(range(300)), "a reading is missing"
    assert [i for i, n in counts.items() if n > 1] == [], "a reading arrived twice"
    assert 40 <= before < 300
    states = [s.state for s in got.statuses]
    changes = [state for i, state in enumerate(states) if i == 0 or states[i - 1] is not state]
    assert changes == [DeviceState.ONLINE, DeviceState.OFFLINE, DeviceState.ONLINE]
