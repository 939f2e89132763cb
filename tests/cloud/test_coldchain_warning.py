"""Early warning and anomaly models defined in time, judged at several sampling intervals.

No database: the pure core fed by the thermal simulator (``simulators.thermal``) and by
synthetic series. Each property is checked at more than one sampling interval, because the
models must hold on any logger, not only the one they were designed on.
"""

from __future__ import annotations

import math
import pickle
import random
from collections.abc import Hashable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from river.base import AnomalyDetector

from cloud.coldchain import CheckpointError
from cloud.coldchain.anomaly import (
    DoorOpenDetector,
    LevelDetector,
    SensorModels,
    StuckDetector,
)
from cloud.coldchain.forecast import (
    EarlyWarner,
    UnitEnvelope,
    WarningParams,
    trend_per_minute,
)
from cloud.coldchain.profiles import STANDARD_PROFILES
from simulators.scenarios import ScenarioPlayer, named
from simulators.thermal import Fault, StorageUnitModel, UnitProfile, preset

T0 = datetime(2026, 2, 1, tzinfo=UTC)
FRIDGE = STANDARD_PROFILES["std-refrigerated"]
PARAMS = WarningParams()
M = timedelta(minutes=1)
Series = list[tuple[datetime, float]]


def simulated(
    seed: int, days: float, *, fault: str | None = None, doors: float = 4.0
) -> tuple[Series, datetime | None]:
    """A fridge read every minute for ``days``; ``fault`` starts 10 minutes before the end of
    the normal part (the last 90 minutes are the scenario)."""
    unit = StorageUnitModel(
        preset(UnitProfile.REFRIGERATOR, door_openings_per_hour=doors),
        seed=seed,
        start=T0 - timedelta(hours=6),
    )
    unit.advance(timedelta(hours=6))
    out: Series = []
    end = T0 + timedelta(days=days)
    start = end - timedelta(minutes=90)
    player = None
    t = T0
    while t < end:
        t += M
        if fault is not None and player is None and t >= start:
            player = ScenarioPlayer(named(fault, "f"), {"f": unit}, start=start)
        if player is not None:
            player.advance_to(t)
        unit.advance_to(t)
        sample = unit.read_sensor()
        assert sample is not None
        assert sample.value is not None
        out.append((t, sample.value))
    return out, (start + 10 * M if fault else None)


def every(series: Series, minutes: int) -> Series:
    return [(t, v) for t, v in series if int((t - T0) / M) % minutes == 0]


def warnings_of(series: Series, params: WarningParams = PARAMS) -> list[datetime]:
    warner = EarlyWarner(params)
    return [t for t, v in series if warner.observe(t, v, FRIDGE) is not None]


@pytest.fixture(scope="module")
def compressor_failure() -> tuple[Series, datetime, datetime]:
    series, fault = simulated(7, 2.0, fault="compressor-failure", doors=2.0)
    assert fault is not None
    breach = next(t for t, v in series if t > fault and v > 8.0)
    return series, fault, breach


@pytest.mark.parametrize("minutes", [1, 5])
def test_warns_well_before_a_compressor_failure_breaches(
    compressor_failure: tuple[Series, datetime, datetime], minutes: int
) -> None:
    series, fault, breach = compressor_failure
    warned = [t for t in warnings_of(every(series, minutes)) if t >= fault]
    assert warned, "no warning before the breach"
    # The breach is the minute the probe really passed 8 °C, whatever the sampling interval.
    assert breach - warned[0] >= 10 * M
    assert warned[0] > fault  # a failure is not recognisable before it happens


@pytest.mark.parametrize("minutes", [1, 5, 15])
def test_no_false_warning_on_two_busy_healthy_days(minutes: int) -> None:
    series, _ = simulated(3, 2.0, doors=4.0)
    assert warnings_of(every(series, minutes)) == []


def test_irregular_and_bursty_sampling_still_warns_in_time(
    compressor_failure: tuple[Series, datetime, datetime],
) -> None:
    series, fault, breach = compressor_failure
    rng = random.Random(5)
    # A logger that reports on change and in bursts: gaps from 1 to 7 minutes, never regular.
    kept, next_at = [], series[0][0]
    for t, v in series:
        if t >= next_at:
            kept.append((t, v))
            next_at = t + timedelta(minutes=rng.choice([1, 1, 2, 3, 5, 7]))
    warned = [t for t in warnings_of(kept) if t >= fault]
    assert warned
    assert breach - warned[0] >= 5 * M


def test_a_cold_start_uses_the_profile_envelope() -> None:
    # No history at all: the warning still comes, from the profile's upper quarter (6.5 °C).
    warner = EarlyWarner()
    found = [warner.observe(T0 + i * M, 5.0 + 0.1 * i, FRIDGE) for i in range(30)]
    first = next(w for w in found if w is not None)
    assert first.side == "high"
    assert first.limit == 8.0
    assert first.value < 8.0
    assert 0 < first.minutes <= 60
    assert sum(w is not None for w in found) == 1  # once per approach


def test_the_low_side_warns_of_freezing() -> None:
    warner = EarlyWarner()
    found = [warner.observe(T0 + i * M, 5.0 - 0.1 * i, FRIDGE) for i in range(30)]
    first = next(w for w in found if w is not None)
    assert (first.side, first.limit) == ("low", 2.0)


@pytest.mark.parametrize("minutes", [1, 5])
def test_a_thermostat_stuck_on_is_warned_ten_minutes_before_the_freeze(minutes: int) -> None:
    # The low side's shorter run: doors only warm a unit, so below its band is at once unusual.
    series, fault = simulated(7, 2.0, fault="freezing", doors=2.0)
    assert fault is not None
    breach = next(t for t, v in series if t > fault and v < 2.0)
    warned = [t for t in warnings_of(every(series, minutes)) if t >= fault]
    assert warned, "no warning before the breach"
    assert breach - warned[0] >= 10 * M


def test_a_door_spike_after_a_trough_is_not_a_failure() -> None:
    warner = EarlyWarner()
    # 4.5 °C (trough), then a door opening: 7 °C for a minute, recovering quickly.
    values = [4.5] * 20 + [7.0, 7.2, 6.8, 6.0, 5.2, 4.8] + [4.6] * 10
    assert all(warner.observe(T0 + i * M, v, FRIDGE) is None for i, v in enumerate(values))


def test_a_gap_longer_than_max_gap_restarts_the_run() -> None:
    warner = EarlyWarner()
    assert warner.observe(T0, 5.0, FRIDGE) is None
    # Silence is no evidence: a reading after three hours starts over.
    assert warner.observe(T0 + timedelta(hours=3), 7.5, FRIDGE) is None
    assert warner.observe(T0 + timedelta(hours=3, minutes=1), 7.6, FRIDGE) is None


def test_envelope_is_learned_per_time_of_day() -> None:
    envelope = UnitEnvelope(bucket=timedelta(hours=3), warmup=timedelta(days=1))
    rng = random.Random(2)
    for minute in range(3 * 24 * 60):
        t = T0 + minute * M
        busy = 9 <= t.hour < 12  # a busy morning: the door opens often, readings run higher
        value = 5.0 + rng.gauss(0, 0.3) + (rng.random() < 0.2) * (1.5 if busy else 0)
        envelope.learn_one({"t": t.timestamp(), "value": value})
    morning = envelope.get(0.95, (T0 + timedelta(hours=10)).timestamp())
    night = envelope.get(0.95, (T0 + timedelta(hours=3)).timestamp())
    assert morning is not None
    assert night is not None
    assert morning > night + 0.5


def test_envelope_warms_up_on_reading_time_not_on_count() -> None:
    hourly, minutely = UnitEnvelope(), UnitEnvelope()
    for hour in range(23):
        hourly.learn_one({"t": (T0 + timedelta(hours=hour)).timestamp(), "value": 5.0})
    for minute in range(23 * 60):
        minutely.learn_one({"t": (T0 + minute * M).timestamp(), "value": 5.0})
    now = (T0 + timedelta(hours=23)).timestamp()
    assert hourly.get(0.95, now) is None
    assert minutely.get(0.95, now) is None  # 1,380 readings are still less than a day
    hourly.learn_one({"t": (T0 + timedelta(hours=25)).timestamp(), "value": 5.0})
    assert hourly.get(0.95, now) == 5.0


def test_trend_is_per_minute_on_uneven_times() -> None:
    assert trend_per_minute([(0.0, 4.0), (30.0, 4.5), (300.0, 9.0)]) == pytest.approx(1.0)
    assert trend_per_minute([(0.0, 4.0)]) is None


def test_params_are_refused_when_inconsistent() -> None:
    with pytest.raises(ValueError, match="divide a day"):
        WarningParams(bucket=timedelta(hours=5))
    with pytest.raises(ValueError, match="guard"):
        WarningParams(guard=0.96)


# ---------------------------------------------------------------------------------------------
# Anomaly models


@pytest.mark.parametrize("cls", [LevelDetector, DoorOpenDetector, StuckDetector])
def test_detectors_follow_river_conventions(cls: type[AnomalyDetector]) -> None:
    detector = cls()
    assert isinstance(detector, AnomalyDetector)
    clone = detector.clone()
    assert type(clone) is cls
    assert clone._get_params() == detector._get_params()
    assert all(isinstance(v, (timedelta, float, int)) for v in detector._get_params().values())
    x: dict[Hashable, Any] = {"t": T0.timestamp(), "value": 5.0}
    assert detector.score_one(x) == 0.0  # nothing learned yet: no opinion


def level_flags(series: Series) -> list[datetime]:
    detector, active, out = LevelDetector(), False, []
    for t, v in series:
        x: dict[Hashable, Any] = {"t": t.timestamp(), "value": v}
        score = detector.score_one(x)
        if score >= 1.0 and not active:
            out.append(t)
        active = score >= 0.5 if active else score >= 1.0
        detector.learn_one(x)
    return out


@pytest.mark.parametrize("minutes", [1, 15, 60])
def test_level_shift_is_flagged_at_any_interval_after_its_hold(minutes: int) -> None:
    rng = random.Random(minutes)
    step_at = T0 + timedelta(days=10)
    series = []
    for i in range(0, 12 * 24 * 60, minutes):
        t = T0 + i * M
        daily = 1.5 * math.sin(2 * math.pi * (t.hour + t.minute / 60) / 24)  # office day cycle
        series.append((t, 20.0 + daily + rng.gauss(0, 0.3) + (4.0 if t >= step_at else 0.0)))
    flags = level_flags(series)
    assert len(flags) == 1
    # Held for an hour (plus smoothing), whatever the interval: the same reading time.
    assert step_at + timedelta(hours=1) <= flags[0] <= step_at + timedelta(hours=3)


def test_level_is_quiet_on_a_healthy_fridge_with_doors() -> None:
    series, _ = simulated(4, 3.0, doors=4.0)
    for minutes in (1, 5, 60):
        assert level_flags(every(series, minutes)) == []


def models_flags(series: Series) -> list[tuple[str, datetime]]:
    models = SensorModels()
    out = []
    for t, v in series:
        flags, _ = models.observe(t, v, FRIDGE, PARAMS)
        out += [(f.model, f.at) for f in flags]
    return out


def test_door_open_flagged_on_minute_data_and_not_judged_on_hourly() -> None:
    rng = random.Random(3)
    series = []
    for minute in range(12 * 60):
        value = 5.0 + math.sin(2 * math.pi * minute / 30) + rng.gauss(0, 0.05)
        if 600 <= minute < 603:
            value += 3.0 * (minute - 599)  # door opened: +3 °C per minute
        series.append((T0 + minute * M, value))
    assert [m for m, _ in models_flags(series)] == ["door_open"]
    assert [m for m, _ in models_flags(every(series, 60))] == []


@pytest.mark.parametrize("minutes", [1, 15])
def test_stuck_sensor_flagged_once(minutes: int) -> None:
    rng = random.Random(5)
    series = []
    for minute in range(0, 3 * 24 * 60, minutes):
        stuck = minute >= 2 * 24 * 60
        value = 4.7 if stuck else 5.0 + math.sin(2 * math.pi * minute / 30) + rng.gauss(0, 0.05)
        series.append((T0 + minute * M, value))
    stuck_flags = [at for m, at in models_flags(series) if m == "stuck"]
    assert len(stuck_flags) == 1
    since = T0 + timedelta(days=2)
    assert since < stuck_flags[0] <= since + timedelta(hours=2)


def test_checkpoint_replays_deterministically() -> None:
    series, _ = simulated(8, 2.5, fault="compressor-failure", doors=4.0)
    half = len(series) // 2
    whole = SensorModels()
    out_whole = [whole.observe(t, v, FRIDGE, PARAMS) for t, v in series]
    first = SensorModels()
    for t, v in series[:half]:
        first.observe(t, v, FRIDGE, PARAMS)
    blob = first.dumps()
    assert len(blob) < 32_000
    restored = SensorModels.loads(blob)
    out_split = [restored.observe(t, v, FRIDGE, PARAMS) for t, v in series[half:]]
    assert out_split == out_whole[half:]
    # And they go on alike: the same state, not only the same answers so far.
    end = series[-1][0]
    more = [(end + i * M, 7.0 + 0.05 * i) for i in range(1, 60)]
    assert [restored.observe(t, v, FRIDGE, PARAMS) for t, v in more] == [
        whole.observe(t, v, FRIDGE, PARAMS) for t, v in more
    ]
    assert any(w is not None for _, w in out_whole[half:])  # the failure was warned of


def test_an_older_checkpoint_layout_starts_afresh_and_garbage_is_refused() -> None:
    # A pickle of a class an older release had (the Holt state) and this one no longer has.
    blob = b"ccloud.coldchain.forecast\nHoltState\n)\x81."
    assert SensorModels.loads(blob).last is None
    with pytest.raises(CheckpointError):
        SensorModels.loads(b"not a pickle")
    with pytest.raises(CheckpointError):
        SensorModels.loads(pickle.dumps({"something": "else"}))


def test_an_implausible_value_is_not_learned() -> None:
    series, _ = simulated(6, 1.5, doors=2.0)
    clean, dirty = SensorModels(), SensorModels()
    for i, (t, v) in enumerate(series):
        clean.observe(t, v, FRIDGE, PARAMS)
        dirty.observe(t, v, FRIDGE, PARAMS)
        if i == len(series) // 2:  # two corrupt readings between two good ones
            assert dirty.observe(t + timedelta(seconds=1), math.nan, FRIDGE, PARAMS) == ([], None)
            assert dirty.observe(t + timedelta(seconds=2), 1e300, FRIDGE, PARAMS) == ([], None)
    end = series[-1][0]
    more = [(end + i * M, 5.0 + 0.1 * i) for i in range(1, 40)]
    after = [dirty.observe(t, v, FRIDGE, PARAMS) for t, v in more]
    assert after == [clean.observe(t, v, FRIDGE, PARAMS) for t, v in more]
    assert any(w is not None for _, w in after)  # and the models still work


@pytest.mark.parametrize("minutes", [1, 5])
def test_a_freezer_is_warned_by_the_same_configuration(minutes: int) -> None:
    profile = STANDARD_PROFILES["std-frozen"]
    unit = StorageUnitModel(preset(UnitProfile.FREEZER, door_openings_per_hour=2.0), seed=4,
                            start=T0 - timedelta(hours=6))  # fmt: skip
    unit.advance(timedelta(hours=6))
    fault = T0 + timedelta(days=1, minutes=10)
    series: Series = []
    t = T0
    while t < fault + timedelta(hours=2):
        t += M
        if t == fault:
            unit.start_fault(Fault.COMPRESSOR_FAILURE)
        unit.advance_to(t)
        sample = unit.read_sensor()
        assert sample is not None
        assert sample.value is not None
        series.append((t, sample.value))
    breach = next(t for t, v in series if v > -15.0)
    warner = EarlyWarner()
    warned = [t for t, v in every(series, minutes) if warner.observe(t, v, profile) is not None]
    assert warned
    assert fault < warned[0] <= breach - 10 * M


def test_a_bursty_logger_is_not_taken_for_door_openings() -> None:
    # Every minute, and now and then a second report two seconds later, 0.2 °C on: over two
    # seconds that is 6 °C per minute (a reading-to-reading rate flagged 49 door openings).
    series, _ = simulated(9, 1.5, doors=0.0)
    bursty: Series = []
    for i, (t, v) in enumerate(series):
        bursty.append((t, v))
        if i % 37 == 0:
            bursty.append((t + timedelta(seconds=2), round(v + 0.2, 1)))
    assert [m for m, _ in models_flags(bursty) if m == "door_open"] == []
    assert warnings_of(bursty) == []


def test_a_logger_moved_to_a_freezer_learns_the_freezer_afresh() -> None:
    fridge, _ = simulated(10, 1.5, doors=2.0)
    models = SensorModels()
    for t, v in fridge:
        models.observe(t, v, FRIDGE, PARAMS)
    freezer = StorageUnitModel(preset(UnitProfile.FREEZER, door_openings_per_hour=2.0), seed=3,
                               start=fridge[-1][0])  # fmt: skip
    frozen = STANDARD_PROFILES["std-frozen"]
    out = []
    t = fridge[-1][0]
    for _ in range(24 * 60):
        t += M
        freezer.advance_to(t)
        sample = freezer.read_sensor()
        assert sample is not None
        assert sample.value is not None
        out.append(models.observe(t, sample.value, frozen, PARAMS))
    # Judged against the fridge's band, every freezer reading is "beyond the low envelope".
    assert [w for _, w in out if w is not None] == []
    assert [f.model for flags, _ in out for f in flags] == []
