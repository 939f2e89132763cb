"""Early warning: "high limit 8 °C expected in N minutes", judged in time against the unit's own
normal band.

A failing compressor looks, for its first ten minutes or so, exactly like a normal off-cycle: the
air warms at the same rate. It becomes recognisable when the reading goes past the top of the
unit's normal cycle and stays there without the cooling dip that a working unit shows. So a
warning needs, on reading time (any sampling interval, uneven allowed):

1. the unit's **envelope**: its own high and low quantiles (``UnitEnvelope``, river ``Quantile``
   per time-of-day bucket, so a busy morning's door openings widen the band only in the
   morning). Until a unit has ``warmup`` of readings the envelope is the profile's (the outer
   quarters of the action range);
2. every reading of the last ``hold`` beyond the envelope (plus ``margin``), reaching back
   over at least ``min_readings`` readings on sparse sampling, and the reading at the start of
   that span (the *anchor*) no lower than the unit's ``guard`` quantile: no cooling dip in
   between, and not a door-open spike after a normal trough. The low side has its own, shorter
   ``hold_low`` and ``min_readings_low``: nothing in a unit's normal day cools it below its band;
3. still heading out: the newest reading within ``tolerance`` of the run's peak, and the
   least-squares trend over ``trend_window`` pointing at the action limit within ``horizon``.

The warning is raised once per approach and re-armed when a reading is back inside the
envelope. The envelope learns in-range readings only, and none within ``horizon`` after a
warning, so a fault is not learned as normal. A gap longer than ``max_gap`` restarts the run:
silence is no evidence.

>>> from datetime import UTC, datetime, timedelta
>>> from cloud.coldchain.profiles import STANDARD_PROFILES
>>> fridge = STANDARD_PROFILES["std-refrigerated"]
>>> w = EarlyWarner()
>>> t0 = datetime(2026, 1, 1, tzinfo=UTC)
>>> found = [w.observe(t0 + timedelta(minutes=i), 5.0 + 0.1 * i, fridge) for i in range(30)]
>>> first = next(x for x in found if x is not None)
>>> first.side, first.limit, round(first.minutes), first.at - t0
('high', 8.0, 8, datetime.timedelta(seconds=1320))
"""

from __future__ import annotations

from collections import deque
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field, model_validator
from river import base, stats

from cloud.coldchain.profiles import SIDES, Side, StorageProfile

DAY = timedelta(days=1)
Point = tuple[float, float]
"""(reading time in POSIX seconds, value)"""


class WarningParams(BaseModel):
    """The early warning's settings, all in time units (the same for every sampling interval)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    hold: timedelta = Field(default=timedelta(minutes=7), gt=timedelta(0))
    min_readings: int = Field(default=2, ge=1)
    hold_low: timedelta = Field(default=timedelta(minutes=3), gt=timedelta(0))
    min_readings_low: int = Field(default=1, ge=1)
    """The low side's run: shorter, because door openings and defrosts only warm a unit, so a
    reading below its normal band has no everyday cause to rule out first."""
    trend_window: timedelta = Field(default=timedelta(minutes=15), gt=timedelta(0))
    horizon: timedelta = Field(default=timedelta(minutes=60), gt=timedelta(0))
    max_gap: timedelta = Field(default=timedelta(hours=2), gt=timedelta(0))
    margin: float = Field(default=0.2, ge=0)
    """°C beyond the learned envelope quantile."""
    tolerance: float = Field(default=0.1, ge=0)
    """°C the newest reading may sit below the run's peak and still count as heading out."""
    envelope: float = Field(default=0.95, gt=0.5, lt=1)
    guard: float = Field(default=0.75, gt=0.5, lt=1)
    warmup: timedelta = Field(default=DAY, ge=timedelta(0))
    bucket: timedelta = Field(default=timedelta(hours=3), gt=timedelta(0), le=DAY)
    bucket_warmup: timedelta = Field(default=timedelta(hours=6), ge=timedelta(0))
    """Reading time a time-of-day bucket must have seen before its own quantiles are used."""

    @model_validator(mode="after")
    def _consistent(self) -> WarningParams:
        if DAY % self.bucket:
            raise ValueError("bucket must divide a day")
        if self.guard >= self.envelope:
            raise ValueError("guard must be a lower quantile than envelope")
        return self


class UnitEnvelope(base.Base):
    """Quantiles of one unit's readings, overall and per time-of-day bucket (UTC), in time.

    River conventions: constructor parameters kept verbatim (``clone()``), ``learn_one`` on a
    feature dict ``{"t": POSIX seconds, "value": float}``. Warm-up is reading time covered
    (each reading covers the time since the previous one, at most ``max_gap``), not a count.

    >>> e = UnitEnvelope(quantiles=(0.5,), warmup=timedelta(hours=1))
    >>> for i in range(61):
    ...     e.learn_one({"t": 60.0 * i, "value": float(i % 10)})
    >>> round(e.get(0.5, 3600.0), 1)  # P² estimate of the median of 0..9
    4.2
    """

    def __init__(
        self,
        quantiles: tuple[float, ...] = (0.05, 0.25, 0.75, 0.95),
        bucket: timedelta = timedelta(hours=3),
        warmup: timedelta = DAY,
        bucket_warmup: timedelta = timedelta(hours=6),
        max_gap: timedelta = timedelta(hours=2),
    ) -> None:
        self.quantiles = quantiles
        self.bucket = bucket
        self.warmup = warmup
        self.bucket_warmup = bucket_warmup
        self.max_gap = max_gap
        buckets = int(DAY / bucket)
        self._bucket_s = bucket.total_seconds()
        self._warmup_s = warmup.total_seconds()
        self._bucket_warmup_s = bucket_warmup.total_seconds()
        self._max_gap_s = max_gap.total_seconds()
        self._all = {q: stats.Quantile(q) for q in quantiles}
        self._by_time = [{q: stats.Quantile(q) for q in quantiles} for _ in range(buckets)]
        self._covered = 0.0
        self._bucket_covered = [0.0] * buckets
        self._last: float | None = None

    def _bucket_of(self, t: float) -> int:
        return int((t % 86_400) // self._bucket_s)

    def learn_one(self, x: dict[str, float]) -> None:
        t, value = x["t"], x["value"]
        k = self._bucket_of(t)
        if self._last is not None and t > self._last:
            covered = min(t - self._last, self._max_gap_s)
            self._covered += covered
            self._bucket_covered[k] += covered
        self._last = t if self._last is None else max(self._last, t)
        for q in self.quantiles:
            self._all[q].update(value)
            self._by_time[k][q].update(value)

    def get(self, q: float, t: float) -> float | None:
        """Quantile ``q`` for the time of day of ``t``; None until warmed up."""
        if self._covered < self._warmup_s:
            return None
        k = self._bucket_of(t)
        if self._bucket_covered[k] >= self._bucket_warmup_s:
            found = self._by_time[k][q].get()
        else:
            found = self._all[q].get()
        return None if found is None else float(found)


class EarlyWarning(BaseModel):
    """A "limit expected in N minutes" warning."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    at: datetime
    side: str
    limit: float
    minutes: float
    value: float


def trend_per_minute(points: list[Point]) -> float | None:
    """Least-squares slope of ``points`` in value per minute (None for fewer than two times).

    >>> trend_per_minute([(0.0, 1.0), (60.0, 2.0), (180.0, 4.0)])
    1.0
    """
    if len(points) < 2:
        return None
    n = len(points)
    t0 = points[0][0]
    mt = sum(t - t0 for t, _ in points) / n
    mv = sum(v for _, v in points) / n
    den = sum((t - t0 - mt) ** 2 for t, _ in points)
    if den == 0:
        return None
    return 60.0 * sum((t - t0 - mt) * (v - mv) for t, v in points) / den


class EarlyWarner:
    """One unit's early warning state: envelope, recent readings, and which sides are armed."""

    def __init__(self, params: WarningParams | None = None) -> None:
        self.params = params or WarningParams()
        p = self.params
        self.envelope = UnitEnvelope(
            quantiles=(1 - p.envelope, 1 - p.guard, p.guard, p.envelope),
            bucket=p.bucket,
            warmup=p.warmup,
            bucket_warmup=p.bucket_warmup,
            max_gap=p.max_gap,
        )
        # Seconds, computed once: the warner runs for every reading of every sensor.
        self._run = {  # (hold in seconds, min readings) of each side's run
            "high": (p.hold.total_seconds(), p.min_readings),
            "low": (p.hold_low.total_seconds(), p.min_readings_low),
        }
        self._trend_s = p.trend_window.total_seconds()
        self._horizon_s = p.horizon.total_seconds()
        self._max_gap_s = p.max_gap.total_seconds()
        self._keep_s = max(p.hold.total_seconds(), p.hold_low.total_seconds(), self._trend_s)
        self._recent: deque[Point] = deque()
        self._armed: dict[str, bool] = {"high": True, "low": True}
        self._warned_at: float | None = None

    def observe(self, t: datetime, value: float, profile: StorageProfile) -> EarlyWarning | None:
        """Judges one in-order reading, then learns it; returns a warning at most once per
        approach to a limit."""
        ts = t.timestamp()
        recent = self._recent
        if recent and ts <= recent[-1][0]:
            return None
        if recent and ts - recent[-1][0] > self._max_gap_s:
            recent.clear()
        recent.append((ts, value))
        while len(recent) > 2 and recent[1][0] <= ts - self._keep_s:
            recent.popleft()
        inside = profile.in_range(value)
        found: EarlyWarning | None = None
        if inside:
            for side in SIDES:
                warning = self._judge(side, t, value, profile)
                found = found or warning
        if found is not None:
            self._warned_at = ts
        # Learn in-range readings, except while a warning is fresh: a fault is not normal.
        fresh = self._warned_at is not None and ts - self._warned_at < self._horizon_s
        if not fresh and inside:
            self.envelope.learn_one({"t": ts, "value": value})
        return found

    def _levels(self, side: Side, ts: float, profile: StorageProfile) -> tuple[float, float] | None:
        """(envelope, guard) of one side: learned, or the profile's until warmed up."""
        p = self.params
        high = side == "high"
        env = self.envelope.get(p.envelope if high else 1 - p.envelope, ts)
        guard = self.envelope.get(p.guard if high else 1 - p.guard, ts)
        if env is not None and guard is not None:
            return (env + p.margin, guard) if high else (env - p.margin, guard)
        low, top = profile.limit("low", "action"), profile.limit("high", "action")
        if low is None or top is None:
            return None
        quarter = (top - low) / 4
        return (top - quarter, (top + low) / 2) if high else (low + quarter, (top + low) / 2)

    def _judge(
        self, side: Side, t: datetime, value: float, profile: StorageProfile
    ) -> EarlyWarning | None:
        limit = profile.limit(side, "action")
        levels = self._levels(side, t.timestamp(), profile)
        if limit is None or levels is None:
            return None
        sign = 1.0 if side == "high" else -1.0
        env, guard = levels
        if sign * (value - env) <= 0:
            self._armed[side] = True  # back inside the envelope: the next approach may warn
            return None
        if not self._armed[side] or not self._sustained(sign, env, guard, *self._run[side]):
            return None
        minutes = self._minutes_to(limit, value, sign)
        if minutes is None:
            return None
        self._armed[side] = False
        return EarlyWarning(at=t, side=side, limit=limit, minutes=minutes, value=value)

    def _sustained(
        self, sign: float, env: float, guard: float, hold_s: float, min_readings: int
    ) -> bool:
        """Beyond the envelope for ``hold`` with no cooling dip, and not past its peak."""
        p = self.params
        points = list(self._recent)
        since = points[-1][0] - hold_s
        anchor = max((i for i, (at, _) in enumerate(points) if at <= since), default=None)
        if anchor is None:
            return False
        # On sparse sampling the run reaches back far enough to hold ``min_readings``.
        anchor = min(anchor, len(points) - 1 - min_readings)
        if anchor < 0:
            return False
        held = points[anchor + 1 :]
        if any(sign * (v - env) <= 0 for _, v in held):
            return False
        # A reading below the guard at the start of the run is a trough: the spike that
        # follows it is a door opening, not a failure.
        peak = max(sign * v for _, v in held)
        return sign * (points[anchor][1] - guard) >= 0 and sign * held[-1][1] >= peak - p.tolerance

    def _minutes_to(self, limit: float, value: float, sign: float) -> float | None:
        """Minutes until the trend reaches ``limit``, if it heads there within ``horizon``."""
        since = self._recent[-1][0] - self._trend_s
        slope = trend_per_minute([pt for pt in self._recent if pt[0] >= since])
        if slope is None or sign * slope <= 0:
            return None
        minutes = (limit - value) / slope
        return minutes if minutes <= self._horizon_s / 60 else None
