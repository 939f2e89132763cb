"""The demo's simulators and the edge agent's own file (see ``coldtrace.demo``).

Which edge source reads which simulator under which sensor or reader id is master data,
commissioned through the API (``coldtrace.demo_commission``); the agent takes it from the cloud.
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
from edge.config import CloudConfig, EdgeConfig, HealthConfig, OutboxConfig, RemoteConfigSettings
from simulators.llrp_reader import LlrpReaderSimulator, SimulatorConfig
from simulators.mqtt_loggers import MqttLoggerFleet, MqttSimConfig
from simulators.opcua_server import OpcUaSimConfig, OpcUaSimulator
from simulators.scene import PalletPass, Scene, dock_door, pallet
from simulators.site import Clock, SiteRuntime

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


def edge_config(cloud_url: str, token: str, *, workdir: Path) -> EdgeConfig:
    """The gateway's own file: who it is, where the cloud is, its outbox. Its sources, doors and
    local alarm limits come from the cloud (``remote_config``), as commissioned through the API
    by ``coldtrace.demo_commission``."""
    return EdgeConfig(
        gateway_id=demo_site.GATEWAY_ID,
        # The demo's cloud is a child process on this machine: plain HTTP over loopback.
        cloud=CloudConfig.model_validate(
            {"cloud_url": cloud_url, "token": token, "allow_insecure_http": True}
        ),
        outbox=OutboxConfig(path=workdir / "outbox.db"),
        health=HealthConfig(port=0),
        remote_config=RemoteConfigSettings(
            poll_interval=timedelta(seconds=5), cache_path=workdir / "gateway-config.json"
        ),
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
