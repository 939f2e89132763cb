"""Per-sensor anomaly models: door-open patterns, stuck sensors, drifting sensors.

Each detector follows river's conventions (``river.anomaly.base.AnomalyDetector``): ``score_one``
before ``learn_one`` on a feature dict, constructor parameters kept verbatim so ``clone()`` and
pickling work, no hidden randomness. Features come from ``features``: the value and its rate of
change in °C per minute (reading time, uneven sampling allowed).

- ``DoorOpenDetector``: a rise rate far above the sensor's usual rates (robust z-score of the
  rate, learned online) and faster than ``min_rate``: warm air rushing in. Compressor failures
  warm slower and are left to the forecast and the excursion rules.
- ``StuckDetector``: the spread of the last ``window`` values collapses while the sensor's
  long-run spread is normal: a frozen ADC or a dead probe repeating its last value.
- ``DriftDetector``: the slow mean (hours) walks away from the baseline learned in the first
  ``warmup`` readings while the fast dynamics stay normal: calibration drift.

``SensorModels`` bundles the three with the Holt forecaster for one sensor; it is pickled into
the processor's checkpoint (a few kilobytes) and raises a flag on the onset of each condition.

>>> d = StuckDetector(window=5, min_spread=0.01)
>>> for v in [4.0, 4.6, 3.9, 5.1, 4.4, 4.8, 4.2] + [4.5] * 5:
...     d.learn_one({"value": v, "rate": 0.0})
>>> d.score_one({"value": 4.5, "rate": 0.0}) >= 1.0
True
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from river import stats, utils
from river.base import AnomalyDetector

from cloud.coldchain import CheckpointError
from cloud.coldchain.forecast import EarlyWarning, HoltParams, HoltState, update, warn
from cloud.coldchain.profiles import StorageProfile

Features = dict[Hashable, Any]


class DoorOpenDetector(AnomalyDetector):
    """Robust z-score of the rise rate; scores ≥ 1 mean "door-open pattern"."""

    def __init__(self, z_threshold: float = 6.0, min_rate: float = 0.3, warmup: int = 30) -> None:
        self.z_threshold = z_threshold
        self.min_rate = min_rate
        self.warmup = warmup
        self._rate = stats.Var(ddof=0)

    def learn_one(self, x: Features) -> None:
        # Learn only ordinary rates, so that a burst of door openings does not teach the model
        # that bursts are normal.
        if self.score_one(x) < 1.0:
            self._rate.update(float(x["rate"]))

    def score_one(self, x: Features) -> float:
        rate = float(x["rate"])
        if self._rate.n < self.warmup or rate < self.min_rate:
            return 0.0
        mean = self._rate.mean.get()
        std = max(math.sqrt(self._rate.get()), 0.02)
        return max(0.0, (rate - mean) / std) / self.z_threshold


class StuckDetector(AnomalyDetector):
    """Ratio of the long-run spread to the recent spread; scores ≥ 1 mean "stuck"."""

    def __init__(self, window: int = 30, min_spread: float = 0.005, fading: float = 0.01) -> None:
        self.window = window
        self.min_spread = min_spread
        self.fading = fading
        self._recent = utils.Rolling(stats.Var, window_size=window, ddof=0)
        self._long = stats.EWVar(fading_factor=fading)
        self._n = 0

    def learn_one(self, x: Features) -> None:
        value = float(x["value"])
        self._recent.update(value)
        if self.score_one(x) < 1.0:
            self._long.update(value)
        self._n += 1

    def score_one(self, x: Features) -> float:
        if self._n < 2 * self.window:
            return 0.0
        recent = math.sqrt(max(float(self._recent.get()), 0.0))  # type: ignore[operator]
        long_run = math.sqrt(max(self._long.get(), 0.0))
        if long_run < 10 * self.min_spread:
            return 0.0  # a naturally flat signal: nothing to compare against
        return 1.0 if recent < self.min_spread else self.min_spread / recent


class DriftDetector(AnomalyDetector):
    """Distance of the slow mean from the warm-up baseline, in baseline standard deviations."""

    def __init__(
        self, warmup: int = 720, fading: float = 0.002, threshold: float = 3.0, floor: float = 0.2
    ) -> None:
        self.warmup = warmup
        self.fading = fading
        self.threshold = threshold
        self.floor = floor
        self._baseline = stats.Var(ddof=0)
        self._slow = stats.EWMean(fading_factor=fading)

    def learn_one(self, x: Features) -> None:
        value = float(x["value"])
        if self._baseline.n < self.warmup:
            self._baseline.update(value)
        self._slow.update(value)

    def score_one(self, x: Features) -> float:
        if self._baseline.n < self.warmup:
            return 0.0
        std = max(math.sqrt(self._baseline.get()), self.floor)
        return abs(self._slow.get() - self._baseline.mean.get()) / std / self.threshold


@dataclass(frozen=True)
class AnomalyFlag:
    """The onset of an anomalous condition at reading time ``at``."""

    at: datetime
    model: str
    score: float


def default_detectors() -> dict[str, AnomalyDetector]:
    return {"door_open": DoorOpenDetector(), "stuck": StuckDetector(), "drift": DriftDetector()}


@dataclass
class SensorModels:
    """Everything learned about one sensor; pickled into the processor's checkpoint."""

    detectors: dict[str, AnomalyDetector] = field(default_factory=default_detectors)
    holt: HoltState = field(default_factory=HoltState)
    last: tuple[datetime, float] | None = None
    active: set[str] = field(default_factory=set)

    def features(self, t: datetime, value: float) -> Features:
        if self.last is None or t <= self.last[0]:
            return {"value": value, "rate": 0.0}
        minutes = (t - self.last[0]).total_seconds() / 60.0
        return {"value": value, "rate": (value - self.last[1]) / minutes}

    def observe(
        self, t: datetime, value: float, profile: StorageProfile, params: HoltParams
    ) -> tuple[list[AnomalyFlag], EarlyWarning | None]:
        """Scores then learns one reading; returns condition onsets and an early warning."""
        if self.last is not None and t <= self.last[0]:
            return [], None
        x = self.features(t, value)
        flags: list[AnomalyFlag] = []
        for name, detector in self.detectors.items():
            score = float(detector.score_one(x))
            if score >= 1.0 and name not in self.active:
                flags.append(AnomalyFlag(at=t, model=name, score=score))
                self.active.add(name)
            elif score < 0.5:
                self.active.discard(name)  # hysteresis: re-arm only once clearly normal
            detector.learn_one(x)
        self.holt = update(self.holt, t, value, params)
        self.holt, warning = warn(self.holt, profile, value, params)
        self.last = (t, value)
        return flags, warning

    def dumps(self) -> bytes:
        return pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL)

    @staticmethod
    def loads(blob: bytes) -> SensorModels:
        """Restores a checkpoint written by ``dumps`` (our own database, never user input)."""
        try:
            models = pickle.loads(blob)  # noqa: S301 - written by this module only
        except (pickle.UnpicklingError, EOFError, AttributeError, ImportError) as err:
            raise CheckpointError(f"anomaly checkpoint cannot be read: {err}") from err
        if not isinstance(models, SensorModels):
            raise CheckpointError("anomaly checkpoint holds something else")
        return models
