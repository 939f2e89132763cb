"""Early warning: Holt's damped linear trend per sensor, and "limit expected in N minutes".

Generic anomaly detectors were measured to flag a failing compressor only *after* the breach,
so the warning comes from a forecast instead. The filter runs on reading time with uneven
sampling: the trend is in °C per minute, and each update scales it by the elapsed minutes.
The forecast ``h`` minutes ahead is damped (``phi`` < 1 per minute), so a short rise (a door
opened) does not extrapolate for ever::

    ŷ(t + h) = level + trend · (phi + phi² + … + phi^h)

A warning is raised when the damped forecast crosses an action limit within ``horizon`` on
``confirmations`` consecutive readings while the reading itself is still inside.

>>> from datetime import datetime, timedelta, UTC
>>> t0 = datetime(2026, 1, 1, tzinfo=UTC)
>>> h = HoltState()
>>> for i in range(30):  # +0.1 °C per minute
...     h = update(h, t0 + timedelta(minutes=i), 4.0 + 0.1 * i, HoltParams())
>>> round(minutes_to(h, 8.0, HoltParams()) or 0)
37
"""

from __future__ import annotations

import math
import statistics
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field

from cloud.coldchain.profiles import SIDES, StorageProfile


class HoltParams(BaseModel):
    """Smoothing and damping (per minute of reading time), horizon and confirmation count.

    ``beta`` is small on purpose: the trend must average over a compressor's duty cycle
    (typically 20–40 minutes), or every cooling cycle's warm half would look like a failure.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    alpha: float = Field(default=0.3, gt=0, le=1)
    beta: float = Field(default=0.03, gt=0, le=1)
    phi: float = Field(default=0.98, gt=0, lt=1)
    horizon: timedelta = timedelta(minutes=60)
    confirmations: int = Field(default=5, ge=1)
    max_gap: timedelta = timedelta(minutes=30)
    median_of: int = Field(default=5, ge=1, le=31)
    """Readings in the running median fed to the filter: a door opened for a minute is a spike
    of one or two readings, which the median removes, while a failing compressor's steady
    rise passes through (a couple of readings late)."""


class HoltState(BaseModel):
    """Level (°C), trend (°C/min), last time, and the run of confirming readings."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    level: float | None = None
    trend: float = 0.0
    last_time: datetime | None = None
    streak: int = 0
    warned: bool = False
    recent: tuple[float, ...] = ()


def update(state: HoltState, t: datetime, value: float, params: HoltParams) -> HoltState:
    """Feeds one reading; a gap longer than ``max_gap`` restarts the filter."""
    if state.level is None or state.last_time is None or t - state.last_time > params.max_gap:
        return HoltState(level=value, trend=0.0, last_time=t, recent=(value,))
    dt = (t - state.last_time).total_seconds() / 60.0
    if dt <= 0:
        return state
    recent = (*state.recent, value)[-params.median_of :]
    value = statistics.median(recent)
    # Per-minute smoothing applied over dt minutes, so uneven sampling weighs time, not count.
    alpha = 1 - (1 - params.alpha) ** dt
    beta = 1 - (1 - params.beta) ** dt
    predicted = state.level + state.trend * dt
    level = alpha * value + (1 - alpha) * predicted
    trend = beta * (level - state.level) / dt + (1 - beta) * state.trend
    return state.model_copy(
        update={"level": level, "trend": trend, "last_time": t, "recent": recent}
    )


def forecast(state: HoltState, minutes: float, params: HoltParams) -> float | None:
    """The damped forecast ``minutes`` ahead of the last reading."""
    if state.level is None:
        return None
    phi = params.phi
    damped: float = phi * (1 - phi**minutes) / (1 - phi)
    return state.level + state.trend * damped


def minutes_to(state: HoltState, limit: float, params: HoltParams) -> float | None:
    """Minutes until the damped forecast reaches ``limit`` (None if it never does)."""
    if state.level is None or state.trend == 0:
        return None
    gap = limit - state.level
    if gap == 0:
        return 0.0
    if (gap > 0) != (state.trend > 0):
        return None
    phi = params.phi
    # level + trend·phi·(1 − phi^h)/(1 − phi) = limit  ⇒  phi^h = 1 − gap·(1 − phi)/(trend·phi)
    rest = 1 - gap * (1 - phi) / (state.trend * phi)
    if rest <= 0:
        return None  # the damped asymptote never reaches the limit
    return math.log(rest) / math.log(phi)


class EarlyWarning(BaseModel):
    """A "limit expected in N minutes" warning."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    at: datetime
    side: str
    limit: float
    minutes: float
    value: float


def warn(
    state: HoltState, profile: StorageProfile, value: float, params: HoltParams
) -> tuple[HoltState, EarlyWarning | None]:
    """Checks the forecast after an ``update``; warns once per approach to a limit."""
    assert state.last_time is not None
    assert state.level is not None
    found: tuple[str, float, float] | None = None
    smoothed = statistics.median(state.recent) if state.recent else value
    for side in SIDES:
        limit = profile.limit(side, "action")
        if limit is None or not profile.in_range(value):
            continue
        # Still heading for the limit: the filtered reading is ahead of the smoothed level.
        # A door closed a few minutes ago leaves a rising trend but falling readings.
        heading = smoothed >= state.level if side == "high" else smoothed <= state.level
        if not heading:
            continue
        minutes = minutes_to(state, limit, params)
        if minutes is not None and minutes <= params.horizon.total_seconds() / 60:
            found = (side, limit, minutes)
    if found is None:
        return state.model_copy(update={"streak": 0, "warned": False}), None
    streak = state.streak + 1
    if streak < params.confirmations or state.warned:
        return state.model_copy(update={"streak": streak}), None
    side_name, limit, minutes = found
    warning = EarlyWarning(
        at=state.last_time, side=side_name, limit=limit, minutes=minutes, value=value
    )
    return state.model_copy(update={"streak": streak, "warned": True}), warning
