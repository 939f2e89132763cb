"""Durability across crashes and outages, all real processes, while the simulators keep publishing.

One stream, three blows, in this order:

1. the edge agent is killed with SIGKILL and started again on the same outbox file and broker
   session;
2. the cloud service is killed with SIGKILL and started again on the same port;
3. the cloud service is stopped (SIGTERM) and stays away for a few seconds, so the edge's
   uplink fails and retries, then it comes back.

Afterwards nothing is lost: every MQTT reading the loggers published is stored (the broker kept
the persistent session's messages while the agent was dead; the outbox kept everything while the
cloud was away; resent batches were recognised by the cloud, so the cloud blows add no duplicate).
OPC-UA has no such replay: values the server wrote while no agent was subscribed are not fetched
back (documented in docs/temperature-sources.md), so for OPC-UA the only readings allowed to be
missing are those written while the agent was down; every other one is stored exactly once.

The agent killed with SIGKILL may have committed a logger message whose PUBACK never reached the
broker; the broker delivers it again after the restart, and the outbox recognises the reading it
already committed, so every reading is stored exactly once.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.checks import opcua_differences, wait_source_records
from tests.e2e.rig import TemperatureRig, duplicates, stored, wait_stored
from tests.e2e.witness import MqttWitness, OpcUaWitness, settle

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

RUN = 18.0  # real seconds the MQTT loggers publish (18 simulated minutes)


async def edge_crash(rig: TemperatureRig, config: Path) -> tuple[float, float]:
    """SIGKILL the agent mid-stream, restart it; returns the window (monotonic) it was away."""
    assert rig.edge is not None
    await wait_source_records(rig.health_port, "mqtt:site-broker", 10)
    down = time.monotonic()
    await rig.edge.kill()
    await asyncio.sleep(1.0)  # the loggers keep publishing into the broker session
    await rig.start_edge(config)
    await wait_source_records(rig.health_port, "opcua:opcua-sim", 2)  # status + a value
    return down, time.monotonic()


async def cloud_crash(rig: TemperatureRig) -> None:
    assert rig.cloud is not None
    await rig.cloud.kill()
    await asyncio.sleep(1.0)
    await rig.start_cloud()


async def cloud_outage(rig: TemperatureRig) -> int:
    """The cloud stopped for 3 s; returns the failed uplink attempts the edge counted."""
    assert rig.cloud is not None
    # uvicorn shuts down gracefully, then re-raises the signal it caught: -15 is a clean stop.
    assert await rig.cloud.terminate() in (0, -15)
    assert "Application shutdown complete" in rig.cloud.log_text()
    await asyncio.sleep(3.0)
    failed = await uplink_failures(rig.health_port)
    await rig.start_cloud()
    return failed


async def uplink_failures(health_port: int) -> int:
    async with httpx.AsyncClient(timeout=2) as client:
        text = (await client.get(f"http://127.0.0.1:{health_port}/metrics")).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith("coldtrace_edge_uplink_attempts_total{") and 'outcome="ok"' not in line:
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


async def test_edge_kill_cloud_kill_and_outage_lose_nothing_and_store_once(
    rig: TemperatureRig,
) -> None:
    await rig.register()
    site = rig.site()
    await rig.start_cloud()
    opcua_args = [*rig.sim_args(site, RUN + 4), "--port", "0", "--update-interval", "0.2",
                  "--security", "None"]  # fmt: skip
    opcua, info = await rig.simulator("opcua", opcua_args)
    endpoint = str(info["endpoint"])
    nodes = {f"ns=2;s={u}.Temperature": s for u, s in rig.opcua_units.items()}
    async with (
        OpcUaWitness(endpoint, nodes) as opcua_seen,
        MqttWitness(rig.mqtt_url, rig.decoders()) as mqtt_seen,
    ):
        config = rig.edge_config(endpoint)
        await rig.start_edge(config)
        await wait_source_records(rig.health_port, "mqtt:site-broker", 1)
        mqtt, _ = await rig.simulator("mqtt", [*rig.sim_args(site, RUN), "--broker", rig.mqtt_url])
        await asyncio.sleep(2.0)
        down, up = await edge_crash(rig, config)
        await asyncio.sleep(2.0)
        await cloud_crash(rig)
        await asyncio.sleep(2.0)
        failed_while_away = await cloud_outage(rig)
        assert await mqtt.wait(RUN + 10) == 0, mqtt.fail("sim mqtt failed")
        assert await opcua.wait(30) == 0, opcua.fail("sim opcua failed")
        await settle(lambda: mqtt_seen.messages + len(opcua_seen.keys()))
        published = {(r.sensor_id, r.time) for r in mqtt_seen.readings()}
        written = set(opcua_seen.keys())
        # A second either side: a value the server published just before the kill may still sit
        # in the killed agent's hand-off (OPC-UA has no acknowledgement to redeliver it), and a
        # loaded machine can delay either subscription's publish by several hundred ms.
        unseen_by_agent = opcua_seen.arrived_between(down - 1.0, up + 1.0)
        end = opcua_seen.last_arrival()
        final_moments = opcua_seen.arrived_between(end - 1.0, end)
    assert failed_while_away > 0  # the outage was real: the uplink failed and retried
    await wait_stored(rig.database_url, published)
    have = await stored(rig.database_url)
    assert {k for k in have if k[0] in rig.mqtt_sensors} == published  # nothing lost
    # Exactly once: the broker's redelivery after the kill is dropped by the outbox, and the
    # cloud blows add nothing (resent batches stop at the high-water mark).
    assert dict(duplicates(have)) == {}
    opcua_stored = {k for k in have if k[0] not in rig.mqtt_sensors}
    # Nothing invented, nothing lost beyond the kill's window and the server's trailing moments.
    invented, lost = opcua_differences(written, opcua_stored, final_moments, unseen_by_agent)
    assert invented == set(), sorted(invented)[:5]
    assert lost == set(), sorted(lost)[:5]
    assert len(published) > 150
    assert len(opcua_stored) > 100
