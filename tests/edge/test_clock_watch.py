"""The gateway clock watch, and the runnable examples of the edge modules' docstrings."""

from __future__ import annotations

import asyncio
import doctest
from datetime import timedelta
from types import ModuleType

import pytest

import edge.alarms
import edge.clock
import edge.uplink
from edge.clock import ClockWatch, ManualClock, SystemClock
from protocols.records import DeviceState, DeviceStatus, Record


def test_steady_clocks_report_nothing(manual_clock: ManualClock) -> None:
    watch = ClockWatch("gw-1", manual_clock, timedelta(seconds=5))
    for _ in range(100):
        manual_clock.advance(10)
        manual_clock.step_wall(timedelta(seconds=0.04))  # ordinary NTP slewing
        assert watch.check() is None
    assert watch.jumps == []


@pytest.mark.parametrize(
    ("step", "word"), [(timedelta(hours=-1), "back"), (timedelta(minutes=3), "forward")]
)
def test_a_jump_beyond_the_bound_is_a_gateway_status(
    manual_clock: ManualClock, step: timedelta, word: str
) -> None:
    watch = ClockWatch("gw-1", manual_clock, timedelta(seconds=30))
    manual_clock.advance(10)
    manual_clock.step_wall(step)
    status = watch.check()
    assert isinstance(status, DeviceStatus)
    assert (status.device_id, status.device_type, status.state) == (
        "gw-1", "gateway", DeviceState.DEGRADED
    )  # fmt: skip
    assert f"jumped {word} by {abs(step).total_seconds():.1f} s" in status.detail
    assert status.time == manual_clock.now()  # stamped with the new wall time
    assert watch.jumps[0].drift == step
    manual_clock.advance(10)
    assert watch.check() is None  # reported once, then the new clock is the reference


def test_a_jump_within_the_bound_is_tolerated(manual_clock: ManualClock) -> None:
    watch = ClockWatch("gw-1", manual_clock, timedelta(seconds=30))
    manual_clock.advance(10)
    manual_clock.step_wall(timedelta(seconds=-29))
    assert watch.check() is None


async def test_run_emits_each_jump(manual_clock: ManualClock) -> None:
    watch = ClockWatch("gw-1", manual_clock, timedelta(seconds=1))
    emitted: list[Record] = []

    async def emit(records: tuple[Record, ...]) -> None:
        emitted.extend(records)
        if len(emitted) == 2:
            raise asyncio.CancelledError

    async def stepper() -> None:
        for step in (timedelta(seconds=-90), timedelta(seconds=90)):
            await asyncio.sleep(0.01)
            manual_clock.step_wall(step)

    step_task = asyncio.create_task(stepper())
    with pytest.raises(asyncio.CancelledError):
        await watch.run(timedelta(seconds=10), emit)
    await step_task
    assert len(emitted) == 2


async def test_system_clock_is_aware_utc_and_monotonic() -> None:
    clock = SystemClock()
    before = clock.monotonic()
    await clock.sleep(0.001)
    assert clock.monotonic() > before
    assert clock.now().utcoffset() == timedelta(0)


@pytest.mark.parametrize("module", [edge.clock, edge.uplink, edge.alarms])
def test_docstring_examples_run(module: ModuleType) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
