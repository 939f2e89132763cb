"""Per-sensor anomaly models, defined in time: level (drift included), door-open, stuck.

Every window, warm-up and rate is a ``timedelta`` or a rate per minute of reading time, so a
one-minute OPC-UA logger, a five-minute MQTT one, a fifteen-minute LoRaWAN one, an hourly one
and a bursty backlog are judged alike: smoothing weighs each reading by the time since the
previous one, warm-ups count reading time covered, and a condition must *hold* for a time.

Each detector follows river's conventions (``river.anomaly.base.AnomalyDetector``):
``score_one`` before ``learn_one`` on ``{"t": POSIX seconds, "value": float}``, constructor
parameters kept verbatim so ``clone()`` and pickling work, no randomness. A score ≥ 1 means
"anomalous now" (``SensorModels`` raises a flag on the onset and re-arms below 0.5).

- ``LevelDetector``: the smoothed reading leaves the unit's own band for its time of day (a
  baseline learned over ``memory`` with a per-hour offset, so a defrost at 03:00 or a busy
  morning is learned as that unit's normal) by ``z`` residual standard deviations, for
  ``hold``. It judges any sampling interval, hourly included, and finds a drifting probe too
  (an earlier drift detector against a frozen warm-up baseline re-fired on every seasonal
  change of real data: 32 false flags on NAB's hourly ambient-temperature file).
- ``DoorOpenDetector``: a rise per minute far above the unit's usual rises (routine openings
  are learned as normal), on readings at most ``max_interval`` apart (a rate over an hour says
  nothing about a door).
- ``StuckDetector``: the spread over the last ``window`` (and at least ``min_readings``)
  collapses while the unit's long-run spread is normal.

>>> from datetime import UTC, datetime, timedelta
>>> d = StuckDetector(window=timedelta(minutes=5), min_readings=5, min_spread=0.01)
>>> t0 = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
>>> values = [4.0, 4.6, 3.9, 5.1, 4.4, 4.8, 4.2, 4.9, 4.1, 4.7, 4.3, 5.0] + [4.5] * 6
>>> for i, v in enumerate(values):
...     d.learn_one({"t": t0 + 60 * i, "value": v})
>>> d.score_one({"t": t0 + 60 * len(values), "value": 4.5}) >= 1.0
True
"""

from __future__ import annotations

import math
import pickle
from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from river.base import AnomalyDetector

from cloud.coldchain import CheckpointError
from cloud.coldchain.forecast import EarlyWarner, EarlyWarning, WarningParams
from cloud.coldchain.profiles import StorageProfile

Features = dict[Hashable, Any]
DAY = timedelta(days=1)
_LN2 = math.log(2.0)
_IMPLAUSIBLE = 1e6


def _decay(dt: float, half_life: float) -> float:
    """Weight of a new reading after ``dt`` seconds for an exponential memory of ``half_life``
    seconds."""
    return 1.0 - math.exp(-_LN2 * dt / half_life)


def _weight(dt: float, covered: float, half_life: float) -> float:
    """Weight of a reading covering ``dt`` seconds after ``covered`` seconds already learned.

    The plain time average until the memory is full, the exponential one after: an exponential
    mean or variance started cold would under-estimate the spread for weeks and flag everything.
    """
    return max(_decay(dt, half_life), dt / (covered + dt))


class LevelDetector(AnomalyDetector):
    """Distance of the smoothed reading from the unit's time-of-day baseline, in ``z`` units."""

    def __init__(
        self,
        *,
        smooth: timedelta = timedelta(minutes=30),
        memory: timedelta = timedelta(days=7),
        z: float = 3.0,
        hold: timedelta = timedelta(hours=1),
        warmup: timedelta = DAY,
        buckets: int = 24,
        max_gap: timedelta = timedelta(hours=2),
        floor: float = 0.05,
    ) -> None:
        self.smooth = smooth
        self.memory = memory
        self.z = z
        self.hold = hold
        self.warmup = warmup
        self.buckets = buckets
        self.max_gap = max_gap
        self.floor = floor
        # Seconds, computed once: these run for every reading of every sensor.
        self._smooth_s = smooth.total_seconds()
        self._memory_s = memory.total_seconds()
        self._hold_s = hold.total_seconds()
        self._warmup_s = warmup.total_seconds()
        self._max_gap_s = max_gap.total_seconds()
        self._last: float | None = None
        self._fast = 0.0
        self._mean = 0.0
        self._var = 0.0
        self._offset = [0.0] * buckets
        self._bucket_covered = [0.0] * buckets
        self._covered = 0.0
        self._since: float | None = None

    def _bucket(self, t: float) -> int:
        return int((t % 86_400) * self.buckets // 86_400)

    def _offset_at(self, k: int) -> float:
        # An hour of the day seen on fewer than two days has no offset of its own yet.
        return self._offset[k] if self._bucket_covered[k] >= 2 * 86_400 / self.buckets else 0.0

    def _step(self, x: Features) -> tuple[float, float, float]:
        """(dt, smoothed value after x, raw score of x) without changing the state."""
        t, value = float(x["t"]), float(x["value"])
        if self._last is None or t <= self._last:
            return 0.0, value if self._last is None else self._fast, 0.0
        dt = t - self._last
        fast = self._fast + _decay(dt, self._smooth_s) * (value - self._fast)
        if self._covered < self._warmup_s:
            return dt, fast, 0.0
        base = self._mean + self._offset_at(self._bucket(t))
        sd = max(math.sqrt(self._var), self.floor)
        return dt, fast, abs(fast - base) / sd / self.z

    def score_one(self, x: Features) -> float:
        _, _, raw = self._step(x)
        if raw < 1.0:
            return raw
        held = self._since is not None and float(x["t"]) - self._since >= self._hold_s
        return raw if held else 0.99  # anomalous, not for long enough yet

    def learn_one(self, x: Features) -> None:
        t, value = float(x["t"]), float(x["value"])
        if self._last is None:
            self._last, self._fast, self._mean = t, value, value
            return
        dt, fast, raw = self._step(x)
        if dt <= 0:
            return
        if raw < 1.0:
            self._since = None
        elif self._since is None:
            self._since = t
        self._last, self._fast = t, fast
        # The baseline learns ten times slower while the reading is anomalous: a fault is not
        # learned as normal within hours, a lasting change (a new set point) within weeks.
        dt = min(dt, self._max_gap_s)
        slow = 0.1 if raw >= 1 else 1.0
        k = self._bucket(t)
        # The residual is judged against the baseline *before* this reading: out of sample.
        r = value - self._mean - self._offset_at(k)
        b = _weight(dt, self._covered, self._memory_s) * slow
        self._var = (1 - b) * (self._var + b * r * r)
        self._mean += b * (value - self._mean)
        # An hour of the day sees 1/buckets of the time: its offset has the same memory in
        # calendar time, so each of its readings weighs as if it covered buckets × dt.
        w = _weight(dt * self.buckets, self._bucket_covered[k] * self.buckets, self._memory_s)
        self._offset[k] += w * slow * (value - self._mean - self._offset[k])
        self._bucket_covered[k] += dt
        self._covered += dt


class DoorOpenDetector(AnomalyDetector):
    """Robust z-score of the rise per minute; scores ≥ 1 mean "door-open pattern".

    The rise is measured from the newest reading at least ``min_span`` older (and at most
    ``max_interval``): a logger reporting in bursts, seconds apart, would otherwise turn one
    0.1 °C quantisation step into a rise of several degrees per minute.
    """

    def __init__(
        self,
        *,
        z_threshold: float = 6.0,
        min_rise: float = 0.3,
        warmup: timedelta = timedelta(hours=6),
        memory: timedelta = timedelta(days=7),
        max_interval: timedelta = timedelta(minutes=5),
        min_span: timedelta = timedelta(minutes=1),
    ) -> None:
        self.z_threshold = z_threshold
        self.min_rise = min_rise
        self.warmup = warmup
        self.memory = memory
        self.max_interval = max_interval
        self.min_span = min_span
        self._warmup_s = warmup.total_seconds()
        self._memory_s = memory.total_seconds()
        self._max_interval_s = max_interval.total_seconds()
        self._min_span_s = min_span.total_seconds()
        self._recent: deque[tuple[float, float]] = deque()
        self._mean = 0.0
        self._var = 0.0
        self._covered = 0.0

    def _rate(self, x: Features) -> tuple[float, float] | None:
        """(seconds since the reference reading, °C per minute), or None if not comparable."""
        t = float(x["t"])
        ref = None
        for at, value in reversed(self._recent):
            if t - at >= self._min_span_s:
                ref = (at, value)
                break
        if ref is None or t - ref[0] > self._max_interval_s:
            return None
        dt = t - ref[0]
        return dt, (float(x["value"]) - ref[1]) * 60.0 / dt

    def score_one(self, x: Features) -> float:
        found = self._rate(x)
        if found is None or self._covered < self._warmup_s:
            return 0.0
        rate = found[1]
        if rate < self.min_rise:
            return 0.0
        std = max(math.sqrt(self._var), 0.02)
        return max(0.0, (rate - self._mean) / std) / self.z_threshold

    def learn_one(self, x: Features) -> None:
        t = float(x["t"])
        if self._recent and t <= self._recent[-1][0]:
            return
        found = self._rate(x)
        # Learn only ordinary rates, so that a burst of door openings does not teach the model
        # that bursts are normal. Each rate weighs the time since the previous reading.
        if found is not None and self.score_one(x) < 1.0:
            dt = t - self._recent[-1][0]
            b = _weight(dt, self._covered, self._memory_s)
            d = found[1] - self._mean
            self._mean += b * d
            self._var = (1 - b) * (self._var + b * d * d)
            self._covered += dt
        self._recent.append((t, float(x["value"])))
        while self._recent and self._recent[0][0] < t - self._max_interval_s:
            self._recent.popleft()


class StuckDetector(AnomalyDetector):
    """Ratio of the minimum spread to the recent spread; scores ≥ 1 mean "stuck"."""

    def __init__(
        self,
        window: timedelta = timedelta(minutes=30),
        min_readings: int = 6,
        min_spread: float = 0.005,
        memory: timedelta = DAY,
    ) -> None:
        self.window = window
        self.min_readings = min_readings
        self.min_spread = min_spread
        self.memory = memory
        self._window_s = window.total_seconds()
        self._memory_s = memory.total_seconds()
        # The recent readings, with running sums of (value − first value) and its square:
        # O(1) per reading, and shifted so that 4.5 °C ± 0.005 keeps its precision.
        self._recent: deque[tuple[float, float]] = deque()
        self._shift = 0.0
        self._sum = 0.0
        self._sumsq = 0.0
        self._mean = 0.0
        self._var = 0.0
        self._covered = 0.0

    def _recent_spread(self) -> float | None:
        n = len(self._recent)
        if n < self.min_readings:
            return None
        mean = self._sum / n
        return math.sqrt(max(self._sumsq / n - mean * mean, 0.0))

    def _push(self, t: float, value: float) -> None:
        if not self._recent:
            self._shift, self._sum, self._sumsq = value, 0.0, 0.0
        d = value - self._shift
        self._recent.append((t, value))
        self._sum += d
        self._sumsq += d * d
        # Keep the window of time, and never fewer than min_readings (sparse loggers).
        while len(self._recent) > self.min_readings and self._recent[0][0] < t - self._window_s:
            _, old = self._recent.popleft()
            d = old - self._shift
            self._sum -= d
            self._sumsq -= d * d

    def learn_one(self, x: Features) -> None:
        t, value = float(x["t"]), float(x["value"])
        last = self._recent[-1][0] if self._recent else None
        if last is not None and t <= last:
            return
        stuck = self.score_one(x) >= 1.0
        self._push(t, value)
        if last is None:
            self._mean = value
            return
        if stuck:
            return  # a stuck value is not the sensor's normal spread
        dt = t - last
        b = _weight(dt, self._covered, self._memory_s)
        d = value - self._mean
        self._mean += b * d
        self._var = (1 - b) * (self._var + b * d * d)
        self._covered += dt

    def score_one(self, x: Features) -> float:
        if self._covered < 2 * self._window_s:
            return 0.0
        recent = self._recent_spread()
        if recent is None or self._var < (10 * self.min_spread) ** 2:
            return 0.0  # a naturally flat signal: nothing to compare against
        return 1.0 if recent < self.min_spread else self.min_spread / recent


@dataclass(frozen=True)
class AnomalyFlag:
    """The onset of an anomalous condition at reading time ``at``."""

    at: datetime
    model: str
    score: float


def default_detectors() -> dict[str, AnomalyDetector]:
    return {
        "level": LevelDetector(),
        "door_open": DoorOpenDetector(),
        "stuck": StuckDetector(),
    }


@dataclass
class SensorModels:
    """Everything learned about one sensor; pickled into the processor's checkpoint."""

    detectors: dict[str, AnomalyDetector] = field(default_factory=default_detectors)
    warner: EarlyWarner = field(default_factory=EarlyWarner)
    last: datetime | None = None
    active: set[str] = field(default_factory=set)
    judged_by: tuple[str, float | None, float | None] | None = None
    """The profile (id, action limits) the models learned under: another one means the sensor
    was moved to another unit (or its band was redefined), and what was learned is not its
    normal any more."""

    def observe(
        self, t: datetime, value: float, profile: StorageProfile, params: WarningParams
    ) -> tuple[list[AnomalyFlag], EarlyWarning | None]:
        """Scores then learns one in-order reading; returns condition onsets and a warning.

        A value that cannot be a temperature (not finite, beyond ±1e6) is not learned: one
        corrupt reading would otherwise poison every mean and spread for good.
        """
        if self.last is not None and t <= self.last:
            return [], None
        if not math.isfinite(value) or abs(value) > _IMPLAUSIBLE:
            return [], None
        judged_by = (profile.profile_id, profile.action_low, profile.action_high)
        if self.judged_by != judged_by:
            if self.judged_by is not None:  # moved to another unit: learn it afresh
                self.detectors, self.warner, self.active = default_detectors(), EarlyWarner(), set()
            self.judged_by = judged_by
        if self.warner.params is not params and self.warner.params != params:
            self.warner = EarlyWarner(params)  # settings changed: learn the envelope afresh
        x: Features = {"t": t.timestamp(), "value": value}
        flags: list[AnomalyFlag] = []
        for name, detector in self.detectors.items():
            score = float(detector.score_one(x))
            if score >= 1.0 and name not in self.active:
                flags.append(AnomalyFlag(at=t, model=name, score=score))
                self.active.add(name)
            elif score < 0.5:
                self.active.discard(name)  # hysteresis: re-arm only once clearly normal
            detector.learn_one(x)
        warning = self.warner.observe(t, value, profile)
        self.last = t
        return flags, warning

    def dumps(self) -> bytes:
        return pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL)

    @staticmethod
    def loads(blob: bytes) -> SensorModels:
        """Restores a checkpoint written by ``dumps`` (our own database, never user input).

        A checkpoint of an older layout (before the models were defined in time) cannot be
        continued: the sensor starts learning afresh rather than failing its batches.
        """
        try:
            models = pickle.loads(blob)  # noqa: S301 - written by this module only
        except (AttributeError, ImportError):
            return SensorModels()  # classes of an older layout: the models learn afresh
        except (pickle.UnpicklingError, EOFError, TypeError, ValueError) as err:
            raise CheckpointError(f"anomaly checkpoint cannot be read: {err}") from err
        if not isinstance(models, SensorModels):
            raise CheckpointError("anomaly checkpoint holds something else")
        if not hasattr(models, "warner"):
            return SensorModels()
        return models
