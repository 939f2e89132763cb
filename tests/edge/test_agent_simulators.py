"""The whole agent with real sources: MQTT loggers through Mosquitto, an LLRP dock door (the
reader simulator over TCP) and the OPC-UA server simulator, uplinked into the MockTransport
cloud."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from edge.cli import source_specs
from protocols.records import DeviceStatus, PortalPassage, Reading, TagRead
from simulators.llrp_reader import LlrpReaderSimulator, SimulatorConfig
from simulators.opcua_server import NAMESPACE_URI, OpcUaSimConfig, OpcUaSimulator
from simulators.scene import PalletPass, dock_door
from simulators.site import OpcUaLogger, SiteRuntime, SiteSpec, UnitSpec
from simulators.thermal import UnitProfile
from tests.edge.conftest import FakeCloud
from tests.edge.test_agent_supervisor import Running, edge_config, eventually
from tests.support.llrp import EPOCH, fast_config, load
from tests.support.temperature_sources import apublish, index_of, json_reading, mqtt_config

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def config_with_sources(tmp_path: Path, mqtt_url: str, prefix: str, **extra: Any) -> Any:
    base = edge_config(tmp_path, **extra)
    data = base.model_dump(mode="python")
    data["mqtt"] = [mqtt_config(mqtt_url, prefix).model_dump(mode="python")]
    return type(base).model_validate(data | extra.get("top", {}))


async def test_mqtt_loggers_reach_the_cloud_through_the_agent(
    tmp_path: Path, mqtt_url: str
) -> None:
    prefix = f"agent-{uuid.uuid4().hex[:8]}"
    config = config_with_sources(tmp_path, mqtt_url, prefix)
    cloud = FakeCloud()
    async with Running(config, source_specs(config), cloud) as run:
        await eventually(lambda: run.snapshot_source_state("mqtt:broker-1") == "running")
        await apublish(
            mqtt_url, [(f"{prefix}/site-a/readings", json_reading(i)) for i in range(200)]
        )
        await eventually(
            lambda: len([i for i in cloud.stored if isinstance(i.record, Reading)]) >= 200
        )
        metrics = (await run.get("/metrics")).text
    readings = [i.record for i in cloud.stored if isinstance(i.record, Reading)]
    assert sorted(index_of(r) for r in readings) == list(range(200))  # none lost, none twice
    assert cloud.seqs() == list(range(1, len(cloud.stored) + 1))
    assert 'coldtrace_edge_source_up{source="mqtt:broker-1"} 1.0' in metrics
    brokers = [i.record for i in cloud.stored if isinstance(i.record, DeviceStatus)]
    assert any(s.device_type == "mqtt_broker" for s in brokers)


async def test_a_pallet_through_the_dock_door_becomes_a_passage(
    tmp_path: Path, mqtt_url: str
) -> None:
    tags = load(3, cases=10)
    scene = dock_door(seed=11)
    scene.add(PalletPass(tags, start=0.5, direction="in"))
    sim_config = SimulatorConfig(port=0, speed=4.0, epoch=EPOCH)
    async with LlrpReaderSimulator(scene, sim_config) as sim:
        base = edge_config(tmp_path)
        data = base.model_dump(mode="python")
        data["llrp"] = [fast_config(sim.port).model_dump(mode="python")]
        data["doors"] = [
            {
                "door_id": "dock-1",
                "reader_id": "dock-reader-1",
                "outside_antennas": [1],
                "inside_antennas": [2],
                "quiet_gap": timedelta(seconds=1),
                "max_dwell": timedelta(seconds=30),
            }
        ]
        config = type(base).model_validate(data)
        cloud = FakeCloud()
        async with Running(config, source_specs(config), cloud):
            await eventually(
                lambda: any(isinstance(i.record, PortalPassage) for i in cloud.stored), 20
            )
    passages = [i.record for i in cloud.stored if isinstance(i.record, PortalPassage)]
    assert len(passages) == 1
    assert passages[0].door_id == "dock-1"
    assert passages[0].direction.value == "in"
    assert set(passages[0].epcs) <= set(tags)
    assert len(passages[0].epcs) >= len(tags) - 2
    reads = [i.record for i in cloud.stored if isinstance(i.record, TagRead)]
    assert {r.epc for r in reads} >= set(passages[0].epcs)
    # the passage is committed after every read it was derived from
    passage = passages[0]
    passage_seq = next(i.seq for i in cloud.stored if i.record == passage)
    source_seqs = [
        i.seq
        for i in cloud.stored
        if isinstance(i.record, TagRead)
        and i.record.epc in passage.epcs
        and i.record.last_seen <= passage.ended_at
    ]
    assert source_seqs
    assert passage_seq > max(source_seqs)


async def test_local_alarm_while_the_cloud_is_away(tmp_path: Path, mqtt_url: str) -> None:
    prefix = f"agent-{uuid.uuid4().hex[:8]}"
    config = config_with_sources(
        tmp_path,
        mqtt_url,
        prefix,
        alarms={
            "cloud_unreachable_after": 0.05,
            "on_delay": 60,
            "sensors": {"fridge-1/t": {"low": 2.0, "high": 8.0}},
        },
    )
    cloud = FakeCloud()
    cloud.script = [lambda r: httpx.Response(503, json={"error": "down"})] * 100_000
    async with Running(config, source_specs(config), cloud) as run:
        await eventually(lambda: run.snapshot_source_state("mqtt:broker-1") == "running")
        await eventually(lambda: run.unreachable() > 0.1)
        warm = [
            '{"sensor_id": "fridge-1/t", "unit": "degC", "value": 9.5, '
            f'"time": "2026-03-01T12:0{m}:00Z"}}'
            for m in range(4)
        ]
        await apublish(mqtt_url, [(f"{prefix}/site-a/readings", w) for w in warm])
        await eventually(lambda: "sensor/fridge-1/t" in run.alarms())
        cloud.script.clear()  # the cloud returns: the alarm record travels with the readings
        await eventually(
            lambda: any(
                isinstance(i.record, DeviceStatus) and i.record.device_id == "fridge-1/t"
                for i in cloud.stored
            )
        )
    status = next(
        i.record
        for i in cloud.stored
        if isinstance(i.record, DeviceStatus) and i.record.device_id == "fridge-1/t"
    )
    assert status.device_type == "sensor"
    assert "above 8.0" in status.detail


class SimClock:
    """The simulator's clock, moved by the test (its units' device time)."""

    def __init__(self) -> None:
        self.time = EPOCH

    def now(self) -> datetime:
        return self.time


async def test_opcua_server_values_reach_the_cloud_through_the_agent(tmp_path: Path) -> None:
    units = ("fridge-a", "freezer-b")
    site = SiteSpec(
        site_id="site-agent",
        units=tuple(
            UnitSpec(unit_id=u, name=u, profile=p, seed=s, logger=OpcUaLogger())
            for u, p, s in zip(
                units, (UnitProfile.REFRIGERATOR, UnitProfile.FREEZER), (3, 4), strict=True
            )
        ),
    )
    clock = SimClock()
    sim_config = OpcUaSimConfig(port=0, security=("None",), update_interval=timedelta(hours=1))
    async with OpcUaSimulator(sim_config, SiteRuntime(site, start=EPOCH), clock) as sim:
        base = edge_config(tmp_path)
        data = base.model_dump(mode="python")
        data["opcua"] = [
            {
                "name": "sim",
                "endpoint": sim.endpoint,
                "nodes": {f"nsu={NAMESPACE_URI};s={u}.Temperature": f"{u}/t" for u in units},
                "sampling_interval": timedelta(milliseconds=10),
                "publishing_interval": timedelta(milliseconds=50),
                "watchdog": timedelta(seconds=2),
                "backoff_initial": timedelta(milliseconds=50),
                "backoff_max": timedelta(milliseconds=300),
            }
        ]
        config = type(base).model_validate(data)
        cloud = FakeCloud()
        async with Running(config, source_specs(config), cloud) as run:
            await eventually(lambda: len(readings_of(cloud, "fridge-a/t")) >= 1)
            for _ in range(5):
                clock.time += timedelta(minutes=1)
                await sim.update()
                await asyncio.sleep(0.12)  # more than one publishing interval per change
            await eventually(lambda: all(len(readings_of(cloud, f"{u}/t")) >= 6 for u in units))
            health = (await run.get("/healthz")).json()
    assert health["sources"]["opcua:sim"]["state"] == "running"
    for unit in units:
        times = [r.time for r in readings_of(cloud, f"{unit}/t")]
        assert times == sorted(set(times))  # device time kept, in order, each value once
        assert times[-1] == EPOCH + timedelta(minutes=5)


def readings_of(cloud: FakeCloud, sensor: str) -> list[Reading]:
    return [
        i.record
        for i in cloud.stored
        if isinstance(i.record, Reading) and i.record.sensor_id == sensor
    ]
