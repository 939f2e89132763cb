"""The demo's simulators and the edge agent's configuration for them (see ``coldtrace.demo``).

Kept apart from the run itself so the wiring reads as one list: which simulator serves which
unit or door, and which edge source reads it under which sensor or reader id.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from coldtrace import demo_site
from edge.agent import SourceSpec
from edge.config import CloudConfig, EdgeConfig, HealthConfig, OutboxConfig
from edge.portal import DoorConfig
from edge.sources.llrp import LlrpReaderConfig
from edge.sources.mqtt import MqttSourceConfig
from edge.sources.opcua import OpcUaEndpointConfig
from protocols.payloads import DecoderSpec
from simulators.llrp_reader import LlrpReaderSimulator, SimulatorConfig
from simulators.mqtt_loggers import MqttLoggerFleet, MqttSimConfig
from simulators.opcua_server import NAMESPACE_URI, OpcUaSimConfig, OpcUaSimulator
from simulators.scene import PalletPass, Scene, dock_door, pallet
from simulators.site import Clock, MqttLogger, Shape, SiteRuntime

log = logging.getLogger("coldtrace.demo")


@dataclass(frozen=True)
class Simulators:
    opcua: OpcUaSimulator
    mqtt: MqttLoggerFleet
    readers: dict[str, LlrpReaderSimulator]
    """Dock door id -> the reader simulator at that door."""
    scenes: dict[str, Scene]


async def simulators(
    stack: AsyncExitStack, opcua: SiteRuntime, mqtt: SiteRuntime, clock: Clock, mqtt_url: str
) -> Simulators:
    """Starts every simulator inside ``stack`` (closed, in reverse, when the stack closes)."""
    server = await stack.enter_async_context(
        OpcUaSimulator(
            OpcUaSimConfig(port=0, security=("None",), update_interval=timedelta(seconds=5)),
            opcua,
            clock,
        )
    )
    fleet = await stack.enter_async_context(
        MqttLoggerFleet(MqttSimConfig(broker=mqtt_url), mqtt, clock)
    )
    readers: dict[str, LlrpReaderSimulator] = {}
    scenes: dict[str, Scene] = {}
    for index, door in enumerate(demo_site.DOORS):
        scenes[door] = dock_door(seed=index + 1)
        readers[door] = await stack.enter_async_context(
            LlrpReaderSimulator(scenes[door], SimulatorConfig(port=0, antennas=2))
        )
    return Simulators(server, fleet, readers, scenes)


def edge_config(
    cloud_url: str, token: str, mqtt_url: str, sims: Simulators, *, workdir: Path, tag: str
) -> EdgeConfig:
    """The gateway's configuration: LLRP readers and doors, the OPC-UA server, the MQTT broker."""
    readers = tuple(
        LlrpReaderConfig(reader_id=demo_site.DOORS[door][1], host="127.0.0.1", port=sim.port,
                         antennas=(1, 2))
        for door, sim in sims.readers.items()
    )  # fmt: skip
    doors = tuple(
        DoorConfig(door_id=door, reader_id=reader, outside_antennas=(1,), inside_antennas=(2,))
        for door, (_name, reader) in demo_site.DOORS.items()
    )
    broker = MqttSourceConfig(
        name="site-broker",
        broker_url=mqtt_url,
        client_id=f"{demo_site.GATEWAY_ID}-{tag}",  # a fresh session per demo run
        session_expiry=timedelta(minutes=10),
        decoders=(
            DecoderSpec(topic=f"coldtrace/{demo_site.SITE_ID}/+/reading", format="coldtrace-json"),
            # only our devices: the broker may carry other sites' traffic
            *(
                DecoderSpec(
                    topic=f"application/+/device/{u.sensor_id}/event/up", format="chirpstack-v4"
                )
                for u in demo_site.UNITS
                if isinstance(u.logger, MqttLogger) and u.logger.shape is Shape.CHIRPSTACK
            ),
        ),
    )
    nodes = {
        f"nsu={NAMESPACE_URI};s={u.unit_id}.Temperature": u.sensor_id
        for u in demo_site.UNITS
        if u.logger.transport == "opcua"
    }
    server = OpcUaEndpointConfig(name="opcua-sim", endpoint=sims.opcua.endpoint, nodes=nodes)
    return EdgeConfig(
        gateway_id=demo_site.GATEWAY_ID,
        # The demo's cloud is a child process on this machine: plain HTTP over loopback.
        cloud=CloudConfig.model_validate(
            {"cloud_url": cloud_url, "token": token, "allow_insecure_http": True}
        ),
        outbox=OutboxConfig(path=workdir / "outbox.db"),
        health=HealthConfig(port=0),
        llrp=readers,
        doors=doors,
        mqtt=(broker,),
        opcua=(server,),
    )


def source_specs(config: EdgeConfig) -> list[SourceSpec]:
    """The sources ``coldtrace edge run`` builds from the same configuration."""
    from edge.cli import source_specs as configured

    return configured(config)


DOOR_CLEAR = 5.0
"""Scene seconds a door stays clear after a pallet, beyond the portal's quiet gap (3 s), so
two pallets through one door never merge into one passage."""


async def feed_pallets(
    sims: Simulators, every: timedelta, report: Callable[[str], None] | None = None
) -> None:
    """Drives the demo's pallets through their doors, inbound, one every ``every`` at most;
    ``report`` is told of each pallet as it goes through."""
    clear_at: dict[str, float] = {}
    for p in demo_site.PALLETS:
        await asyncio.sleep(every.total_seconds())
        reader = sims.readers[p.door]
        wait = clear_at.get(p.door, 0.0) - reader.now()
        if wait > 0:
            await asyncio.sleep(wait / reader.config.speed)
        tags = pallet(p.sscc, demo_site.PALLET_GTIN, p.cases, first_serial=p.first_serial)
        passing = PalletPass(tags, start=reader.now() + 1.0, direction="in")
        sims.scenes[p.door].add(passing)
        clear_at[p.door] = passing.end + DOOR_CLEAR
        log.info("pallet %s (%d cases) through %s", p.sscc, p.cases, p.door)
        if report is not None:
            report(f"pallet {p.sscc} ({p.cases} cases) passing {p.door}")
