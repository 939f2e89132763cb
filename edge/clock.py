"""Clocks for the edge agent, and the watch that notices when the gateway's wall clock jumps.

Records keep the time their device sent; the gateway's own wall clock only stamps
``received_at`` and its own status records. A gateway clock that is set back or forward (NTP
stepping after a long outage, an RTC battery gone flat, an operator) would silently skew those
stamps, so :class:`ClockWatch` compares the wall clock against the monotonic clock at a fixed
interval and reports any difference beyond a bound as a ``DeviceStatus`` of the gateway.

Everything that waits or measures time takes a :class:`Clock`, so tests and simulations can run
minutes of outage in milliseconds with :class:`ManualClock`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from protocols.records import DeviceState, DeviceStatus, Record

log = logging.getLogger(__name__)


class Clock(Protocol):
    """Wall time (aware UTC), monotonic seconds, and sleeping on that clock."""

    def now(self) -> datetime: ...

    def monotonic(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clocks of the machine."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class ManualClock:
    """A clock that moves only when told to, or when someone sleeps on it.

    ``sleep`` advances both clocks by the requested time at once and yields to the event loop,
    so a retry loop that backs off for ten minutes runs in microseconds.

    >>> import asyncio
    >>> clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
    >>> asyncio.run(clock.sleep(90))
    >>> clock.now().isoformat(), clock.monotonic()
    ('2026-01-01T00:01:30+00:00', 90.0)
    """

    def __init__(self, start: datetime | None = None) -> None:
        self._wall = start or datetime(2026, 1, 1, tzinfo=UTC)
        self._mono = 0.0
        self.slept: list[float] = []

    def now(self) -> datetime:
        return self._wall

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        self._mono += seconds
        self._wall += timedelta(seconds=seconds)

    def step_wall(self, delta: timedelta) -> None:
        """Move only the wall clock, as an operator or NTP stepping the clock would."""
        self._wall += delta

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.advance(max(0.0, seconds))
        await asyncio.sleep(0)


@dataclass(frozen=True)
class ClockJump:
    """The wall clock moved by ``drift`` more (or less, when negative) than monotonic time."""

    drift: timedelta
    wall_before: datetime
    wall_after: datetime


class ClockWatch:
    """Compares wall and monotonic time at each ``check`` and reports jumps beyond ``max_jump``.

    >>> clock = ManualClock()
    >>> watch = ClockWatch("gw-1", clock, max_jump=timedelta(seconds=5))
    >>> watch.check() is None
    True
    >>> clock.advance(60); clock.step_wall(timedelta(hours=-1))
    >>> watch.check().state.value
    'degraded'
    """

    def __init__(self, gateway_id: str, clock: Clock, max_jump: timedelta) -> None:
        self._gateway_id = gateway_id
        self._clock = clock
        self._max_jump = max_jump
        self._wall = clock.now()
        self._mono = clock.monotonic()
        self.jumps: list[ClockJump] = []

    def check(self) -> DeviceStatus | None:
        """One comparison; returns the status record to commit when the clock jumped."""
        wall, mono = self._clock.now(), self._clock.monotonic()
        drift = (wall - self._wall) - timedelta(seconds=mono - self._mono)
        before = self._wall
        self._wall, self._mono = wall, mono
        if abs(drift) <= self._max_jump:
            return None
        jump = ClockJump(drift=drift, wall_before=before, wall_after=wall)
        self.jumps.append(jump)
        direction = "forward" if drift > timedelta(0) else "back"
        detail = (
            f"gateway wall clock jumped {direction} by {abs(drift).total_seconds():.1f} s "
            f"(bound {self._max_jump.total_seconds():.1f} s); received_at stamps around "
            f"{wall.isoformat()} follow the new clock, device times are unchanged"
        )
        log.warning(detail)
        return DeviceStatus(
            device_id=self._gateway_id,
            device_type="gateway",
            state=DeviceState.DEGRADED,
            detail=detail,
            time=wall,
        )

    async def run(
        self, interval: timedelta, emit: Callable[[tuple[Record, ...]], Awaitable[object]]
    ) -> None:
        """Check every ``interval`` until cancelled, emitting a status record for each jump."""
        while True:
            await self._clock.sleep(interval.total_seconds())
            status = self.check()
            if status is not None:
                await emit((status,))
