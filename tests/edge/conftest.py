"""Edge fixtures: outboxes (every implementation of the port), clocks and sample records."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge.clock import ManualClock
from edge.outbox import Outbox, OutboxLimits, SqliteOutbox
from protocols.records import Reading

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

OutboxFactory = Callable[[OutboxLimits], Awaitable[Outbox]]


def reading(i: int, sensor: str = "fridge-1/t", value: float = 4.0) -> Reading:
    """A reading whose value encodes ``i``, so tests can check order and identity."""
    t = T0 + timedelta(seconds=i)
    return Reading(sensor_id=sensor, time=t, value=value + i / 1e6, received_at=t)


@pytest.fixture
def manual_clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture(params=["sqlite"])
async def outbox_factory(
    request: pytest.FixtureRequest, tmp_path: Path, manual_clock: ManualClock
) -> AsyncIterator[OutboxFactory]:
    """Opens outboxes of one implementation (the contract suite runs once per implementation)."""
    opened: list[Outbox] = []

    async def make(limits: OutboxLimits) -> Outbox:
        assert request.param == "sqlite"
        outbox = await SqliteOutbox.open(
            tmp_path / f"outbox-{len(opened)}.db", limits, manual_clock
        )
        opened.append(outbox)
        return outbox

    yield make
    for outbox in opened:
        await outbox.close()
