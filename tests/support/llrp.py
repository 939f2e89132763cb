"""Helpers for the RFID tests: fast source settings, a record collector, scenes, offline runs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from edge.sources.llrp import LlrpReaderConfig, LlrpSource
from edge.sources.llrp_link import tag_read
from protocols.llrp.specs import (
    AI_STOP_TAG_OBSERVATION,
    REPORT_N_OR_AISPEC_END,
    AiSpec,
    ContentSelector,
    ReportSpec,
    RoSpec,
)
from protocols.records import DeadLetter, DeviceStatus, Record, TagRead
from simulators.llrp_inventory import InventoryRun
from simulators.scene import Scene, pallet, sscc18

EPOCH = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
GTIN = "00614141000012"


def load(n: int, cases: int = 12) -> tuple[str, ...]:
    """The EPCs of pallet number ``n``: an SSCC-96 tag and ``cases`` SGTIN-96 tags."""
    return pallet(sscc18("0614141", n), GTIN, cases, first_serial=n * 1000)


def fast_config(port: int, **overrides: Any) -> LlrpReaderConfig:
    """Source settings scaled down so faults are noticed within a second."""
    values: dict[str, Any] = {
        "reader_id": "dock-reader-1",
        "host": "127.0.0.1",
        "port": port,
        "antennas": (1, 2),
        "keepalive_interval": timedelta(milliseconds=100),
        "missed_keepalives": 3,
        "connect_timeout": timedelta(seconds=2),
        "backoff_initial": timedelta(milliseconds=20),
        "backoff_max": timedelta(milliseconds=200),
        "report_every_n_tags": 20,
        "report_timeout": timedelta(milliseconds=50),
    }
    values.update(overrides)
    return LlrpReaderConfig(**values)


@dataclass
class Collected:
    """Everything a source yielded, by kind."""

    reads: list[TagRead] = field(default_factory=list)
    statuses: list[DeviceStatus] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    batches: int = 0
    error: BaseException | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def add(self, records: Iterable[Record]) -> None:
        self.changed.set()
        self.batches += 1
        for r in records:
            if isinstance(r, TagRead):
                self.reads.append(r)
            elif isinstance(r, DeviceStatus):
                self.statuses.append(r)
            elif isinstance(r, DeadLetter):
                self.dead.append(r)

    def states(self) -> list[str]:
        return [s.state.value for s in self.statuses]

    async def until(self, condition: Callable[[], bool], within: float = 5.0) -> None:
        """Wait until ``condition`` holds, re-checking whenever records arrive."""
        async with asyncio.timeout(within):
            while not condition():
                self.changed.clear()
                await self.changed.wait()


@asynccontextmanager
async def collecting(
    config: LlrpReaderConfig, per_batch_delay: float = 0.0
) -> AsyncIterator[tuple[LlrpSource, Collected]]:
    """Run a source and collect what it yields (optionally slowly, to create back-pressure)."""
    got = Collected()
    async with LlrpSource(config) as source:

        async def consume() -> None:
            try:
                async for records in source:
                    got.add(records)
                    if per_batch_delay:
                        await asyncio.sleep(per_batch_delay)
            except Exception as err:  # handed to the test to assert on
                got.error = err
                got.changed.set()

        task = asyncio.create_task(consume())
        try:
            yield source, got
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


def portal_rospec(antennas: tuple[int, ...] = (1, 2)) -> RoSpec:
    """The ROSpec our source asks for: all fields, a report every 20 tags or 50 ms."""
    selector = ContentSelector(
        antenna_id=True, peak_rssi=True, first_seen=True, last_seen=True, tag_seen_count=True
    )
    ai = AiSpec(antennas, AI_STOP_TAG_OBSERVATION, 0, tag_count=20, timeout_ms=50)
    return RoSpec(1, 0, 0, 1, 0, 0, (ai,), ReportSpec(REPORT_N_OR_AISPEC_END, 0, selector))


def offline_reads(
    scene: Scene, until: float, reader_id: str = "dock-reader-1", round_s: float = 0.02
) -> list[TagRead]:
    """What the source would yield for ``scene``, computed without sockets (same reader logic)."""
    run = InventoryRun(portal_rospec(), scene, int(EPOCH.timestamp() * 1_000_000))
    reads: list[TagRead] = []
    steps = int(until / round_s)
    for i in range(steps + 1):
        step = run.step(i * round_s)
        now = EPOCH + timedelta(seconds=i * round_s)
        reads += [tag_read(reader_id, r, now) for r in step.reports]
    reads += [tag_read(reader_id, r, EPOCH + timedelta(seconds=until)) for r in run.flush()]
    return reads
