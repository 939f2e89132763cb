"""Holt forecast early warning and the river-convention anomaly detectors (no database)."""

from __future__ import annotations

import math
import random
from collections.abc import Hashable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from river.base import AnomalyDetector

from cloud.coldchain import CheckpointError
from cloud.coldchain.anomaly import (
    DoorOpenDetector,
    DriftDetector,
    SensorModels,
    StuckDetector,
)
from cloud.coldchain.forecast import HoltParams, HoltState, forecast, minutes_to, update, warn
from cloud.coldchain.profiles import STANDARD_PROFILES

T0 = datetime(2026, 2, 1, tzinfo=UTC)
FRIDGE = STANDARD_PROFILES["std-refrigerated"]
PARAMS = HoltParams()


def healthy(minute: int, rng: random.Random) -> float:
    # A compressor duty cycle of 30 minutes between 4 and 6 °C, plus sensor noise.
    return 5.0 + math.sin(2 * math.pi * minute / 30) + rng.gauss(0, 0.05)


def test_forecast_warns_before_a_linear_rise_breaches() -> None:
    state = HoltState()
    warned_at: int | None = None
    for minute in range(120):
        value = 5.0 + 0.05 * minute  # compressor failed: +3 °C per hour, 8 °C at minute 60
        state = update(state, T0 + timedelta(minutes=minute), value, PARAMS)
        state, warning = warn(state, FRIDGE, value, PARAMS)
        if warning is not None and warned_at is None:
            warned_at = minute
            assert warning.side == "high"
            assert warning.limit == 8.0
            assert 0 < warning.minutes <= 60
    assert warned_at is not None
    assert warned_at < 60  # the lead time is positive


def test_no_warning_on_a_healthy_duty_cycle() -> None:
    rng = random.Random(7)
    state = HoltState()
    for minute in range(24 * 60):
        value = healthy(minute, rng)
        state = update(state, T0 + timedelta(minutes=minute), value, PARAMS)
        state, warning = warn(state, FRIDGE, value, PARAMS)
        assert warning is None


def test_damped_forecast_and_asymptote() -> None:
    state = HoltState(level=5.0, trend=0.01, last_time=T0)
    # The damped asymptote is 5 + 0.01·0.98/0.02 = 5.49 °C: 8 °C is never reached.
    assert minutes_to(state, 8.0, PARAMS) is None
    assert forecast(state, 10_000, PARAMS) == pytest.approx(5.49, abs=0.01)
    assert minutes_to(HoltState(level=5.0, trend=-0.2, last_time=T0), 8.0, PARAMS) is None


def test_a_long_gap_restarts_the_filter() -> None:
    state = update(HoltState(), T0, 5.0, PARAMS)
    state = update(state, T0 + timedelta(minutes=1), 6.0, PARAMS)
    assert state.trend != 0
    state = update(state, T0 + timedelta(hours=2), 5.5, PARAMS)
    assert (state.level, state.trend) == (5.5, 0.0)


@pytest.mark.parametrize("cls", [DoorOpenDetector, StuckDetector, DriftDetector])
def test_detectors_follow_river_conventions(cls: type[AnomalyDetector]) -> None:
    detector = cls()
    assert isinstance(detector, AnomalyDetector)
    clone = detector.clone()
    assert type(clone) is cls
    assert clone._get_params() == detector._get_params()
    x: dict[Hashable, Any] = {"value": 5.0, "rate": 0.0}
    assert detector.score_one(x) == 0.0  # nothing learned yet: no opinion


def test_door_open_flagged_and_compressor_rise_not() -> None:
    rng = random.Random(3)
    models = SensorModels()
    flags = []
    for minute in range(300):
        value = healthy(minute, rng)
        if 200 <= minute < 203:
            value += 3.0 * (minute - 199)  # door opened: +3 °C per minute
        found, _ = models.observe(T0 + timedelta(minutes=minute), value, FRIDGE, PARAMS)
        flags += found
    assert [(f.model, f.at) for f in flags] == [("door_open", T0 + timedelta(minutes=200))]

    slow = SensorModels()
    rng = random.Random(4)
    for minute in range(300):
        value = healthy(minute, rng) + (0.05 * (minute - 200) if minute > 200 else 0.0)
        found, _ = slow.observe(T0 + timedelta(minutes=minute), value, FRIDGE, PARAMS)
        assert all(f.model != "door_open" for f in found)


def test_stuck_sensor_flagged_once() -> None:
    rng = random.Random(5)
    models = SensorModels()
    flags = []
    for minute in range(400):
        value = healthy(minute, rng) if minute < 200 else 4.7
        found, _ = models.observe(T0 + timedelta(minutes=minute), value, FRIDGE, PARAMS)
        flags += found
    stuck = [f for f in flags if f.model == "stuck"]
    assert len(stuck) == 1
    assert T0 + timedelta(minutes=200) < stuck[0].at <= T0 + timedelta(minutes=240)


def test_drift_flagged_after_warmup() -> None:
    rng = random.Random(6)
    models = SensorModels()
    flags = []
    for minute in range(3 * 24 * 60):
        bias = max(0.0, (minute - 24 * 60) / (24 * 60)) * 1.5  # +1.5 °C per day after day one
        value = healthy(minute, rng) + bias
        found, _ = models.observe(T0 + timedelta(minutes=minute), value, FRIDGE, PARAMS)
        flags += found
    drift = [f for f in flags if f.model == "drift"]
    assert drift
    assert drift[0].at > T0 + timedelta(days=1)


def test_models_checkpoint_round_trip_and_stay_small() -> None:
    rng = random.Random(8)
    models = SensorModels()
    for minute in range(500):
        models.observe(T0 + timedelta(minutes=minute), healthy(minute, rng), FRIDGE, PARAMS)
    blob = models.dumps()
    assert len(blob) < 16_000
    restored = SensorModels.loads(blob)
    t = T0 + timedelta(minutes=500)
    assert restored.observe(t, 5.0, FRIDGE, PARAMS) == models.observe(t, 5.0, FRIDGE, PARAMS)
    with pytest.raises(CheckpointError):
        SensorModels.loads(b"not a pickle")
