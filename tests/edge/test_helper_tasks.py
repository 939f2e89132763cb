"""The agent's helper loops come back after an unexpected error instead of ending silently."""

from __future__ import annotations

import asyncio
import logging
import random
from datetime import timedelta

import pytest

from edge.clock import ManualClock
from edge.config import SupervisionConfig
from edge.helper_tasks import kept_running

SUP = SupervisionConfig(
    restart_initial=timedelta(seconds=1),
    restart_max=timedelta(seconds=60),
    restart_reset_after=timedelta(minutes=1),
)


async def test_a_crashing_helper_is_restarted_with_backoff_and_logged(
    manual_clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    runs: list[float] = []

    async def door_list() -> None:
        runs.append(manual_clock.monotonic())
        if len(runs) <= 4:
            raise TypeError("an answer nobody foresaw")

    with caplog.at_level(logging.ERROR, logger="edge.helper_tasks"):
        await kept_running(
            "door-list", door_list, clock=manual_clock, supervision=SUP, rng=random.Random(3)
        )
    assert len(runs) == 5  # ran again after each of the four crashes, then ended normally
    waits = manual_clock.slept
    assert len(waits) == 4
    assert [w >= 2**i / 2 for i, w in enumerate(waits)] == [True] * 4  # exponential
    crashed = [r for r in caplog.records if "door-list crashed" in r.getMessage()]
    assert len(crashed) == 4
    assert all(r.exc_info is not None for r in crashed)  # with the traceback


async def test_a_long_life_before_a_crash_restarts_the_backoff(manual_clock: ManualClock) -> None:
    runs = 0

    async def poll() -> None:
        nonlocal runs
        runs += 1
        if runs <= 3:
            raise RuntimeError("bug")
        if runs == 4:
            manual_clock.advance(120)  # ran two minutes, then failed
            raise RuntimeError("bug")

    await kept_running("poll", poll, clock=manual_clock, supervision=SUP, rng=random.Random(1))
    assert manual_clock.slept[-1] <= 1.0  # back to restart_initial


async def test_cancellation_ends_the_helper(manual_clock: ManualClock) -> None:
    started = asyncio.Event()

    async def forever() -> None:
        started.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(kept_running("notify", forever, clock=manual_clock, supervision=SUP))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
