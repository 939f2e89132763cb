"""The OPC-UA simulator restarts mid-stream: every value written while the source was connected
arrives once, in order; the repeat of the last value after re-subscribing is not yielded."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from edge.sources.opcua import OpcUaEndpointConfig, OpcUaSource
from protocols.records import DeviceState, Record
from simulators.opcua_server import NAMESPACE_URI, OpcUaSimConfig, OpcUaSimulator
from simulators.site import OpcUaLogger, SiteRuntime, SiteSpec, UnitSpec
from simulators.thermal import UnitProfile
from tests.support.temperature_sources import Collected, wait_status

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
UNITS = ("fridge-a", "freezer-b")


class ManualClock:
    def __init__(self, start: datetime) -> None:
        self.time = start

    def now(self) -> datetime:
        return self.time


def site() -> SiteSpec:
    return SiteSpec(
        site_id="site-r",
        units=(
            UnitSpec(
                unit_id="fridge-a",
                name="Fridge A",
                profile=UnitProfile.REFRIGERATOR,
                seed=11,
                logger=OpcUaLogger(),
            ),
            UnitSpec(
                unit_id="freezer-b",
                name="Freezer B",
                profile=UnitProfile.FREEZER,
                seed=12,
                logger=OpcUaLogger(),
            ),
        ),
    )


async def readings_until(
    records: AsyncIterator[tuple[Record, ...]], into: Collected, count: int
) -> None:
    async with asyncio.timeout(15):
        while len(into.readings) < count:
            into.records.extend(await anext(records))


async def test_simulator_restart_mid_stream_keeps_every_value_once() -> None:
    clock = ManualClock(T0)
    sim_config = OpcUaSimConfig(port=0, security=("None",), update_interval=timedelta(hours=1))
    async with OpcUaSimulator(sim_config, SiteRuntime(site(), start=T0), clock) as sim:
        source_config = OpcUaEndpointConfig(
            name="sim",
            endpoint=sim.endpoint,
            nodes={f"nsu={NAMESPACE_URI};s={u}.Temperature": f"{u}/t" for u in UNITS},
            sampling_interval=timedelta(milliseconds=10),
            publishing_interval=timedelta(milliseconds=50),
            keepalive_count=4,
            watchdog=timedelta(seconds=1),
            request_timeout=timedelta(seconds=1),
            backoff_initial=timedelta(milliseconds=50),
            backoff_max=timedelta(milliseconds=300),
        )

        async def step(n: int) -> None:
            for _ in range(n):
                clock.time += timedelta(minutes=1)
                await sim.update()
                await asyncio.sleep(0.12)  # > one publishing interval: one value per change

        got = Collected()
        async with OpcUaSource(source_config) as source:
            records = aiter(source)
            await wait_status(records, got, DeviceState.ONLINE)
            await readings_until(records, got, 2)  # current value of each unit
            await step(5)
            await readings_until(records, got, 12)
            await sim.stop()
            await wait_status(records, got, DeviceState.OFFLINE)
            await sim.start()  # rewrites the units' current values
            await wait_status(records, got, DeviceState.ONLINE)
            await step(5)
            await readings_until(records, got, 22)
            await asyncio.sleep(0.3)
            assert len(got.readings) == 22
    for unit in UNITS:
        times = [r.time for r in got.readings if r.sensor_id == f"{unit}/t"]
        assert times == sorted(set(times)), f"{unit}: repeated or out of order"
        assert times[-10:] == [T0 + timedelta(minutes=m) for m in range(1, 11)]
