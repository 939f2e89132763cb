"""Sanity of the thermal model: physics in plausible ranges, faults, determinism."""

from __future__ import annotations

import statistics
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from simulators.thermal import (
    Fault,
    SensorSample,
    SensorStatus,
    StorageUnitModel,
    UnitProfile,
    preset,
)

T0 = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def fridge(seed: int = 7, **overrides: object) -> StorageUnitModel:
    return StorageUnitModel(preset(UnitProfile.REFRIGERATOR, **overrides), seed=seed, start=T0)


def values(unit: StorageUnitModel, duration: timedelta, every: timedelta = MINUTE) -> list[float]:
    out: list[float] = []
    for sample in unit.samples(unit.time + duration, every):
        assert sample is not None
        assert sample.value is not None
        out.append(sample.value)
    return out


def minutes_until_above(unit: StorageUnitModel, limit: float, horizon: timedelta) -> int | None:
    for n, sample in enumerate(unit.samples(unit.time + horizon, MINUTE), start=1):
        assert sample is not None
        assert sample.value is not None
        if sample.value > limit:
            return n
    return None


def test_healthy_fridge_stays_in_range_for_days_with_routine_door_openings() -> None:
    unit = fridge(door_openings_per_hour=2.0)
    series = values(unit, timedelta(days=3))
    assert len(series) == 3 * 24 * 60
    assert min(series) >= 2.0
    assert max(series) <= 8.0
    assert 4.0 < statistics.fmean(series) < 6.0  # centred on the 5 °C set point


@pytest.mark.parametrize(
    ("profile", "low", "high"),
    [
        (UnitProfile.FREEZER, -25.0, -15.0),
        (UnitProfile.ULTRA_COLD, -90.0, -60.0),
        (UnitProfile.CONTROLLED_ROOM, 15.0, 25.0),
    ],
)
def test_other_profiles_hold_their_band(profile: UnitProfile, low: float, high: float) -> None:
    unit = StorageUnitModel(preset(profile, door_openings_per_hour=1.0), seed=3, start=T0)
    series = values(unit, timedelta(days=1))
    assert low <= min(series)
    assert max(series) <= high


def test_compressor_cycles_a_few_times_an_hour() -> None:
    unit = fridge()
    unit.advance(timedelta(hours=2))
    starts, previous = 0, unit.state.compressor_on
    for _ in range(6 * 720):  # six hours in 5 s steps
        unit.advance(timedelta(seconds=5))
        running = unit.state.compressor_on
        starts += running and not previous
        previous = running
    assert 1.5 <= starts / 6 <= 8


def test_compressor_failure_warms_past_8_degrees_in_a_plausible_time() -> None:
    unit = fridge()
    unit.advance(timedelta(hours=4))
    unit.start_fault(Fault.COMPRESSOR_FAILURE)
    minutes = minutes_until_above(unit, 8.0, timedelta(hours=12))
    assert minutes is not None
    assert 10 <= minutes <= 240
    # The product lags the air: it is still cooler than the air.
    assert unit.state.product < unit.state.air


def test_a_60_second_door_opening_is_a_short_spike_that_recovers() -> None:
    unit = fridge()
    unit.advance(timedelta(hours=3))
    before = values(unit, timedelta(minutes=30))
    product_before = unit.state.product
    unit.open_door(timedelta(seconds=60))
    after = values(unit, timedelta(minutes=40), every=timedelta(seconds=30))
    peak_index = after.index(max(after))
    assert max(after) >= max(before) + 0.8
    assert peak_index < 10  # the peak comes within 5 minutes
    assert max(after[-20:]) <= max(before) + 0.3  # back in the normal cycle after 30 min
    assert abs(unit.state.product - product_before) < 0.3  # the load barely notices


def test_power_cut_warms_and_the_unit_recovers_when_power_returns() -> None:
    unit = fridge()
    unit.advance(timedelta(hours=2))
    unit.start_fault(Fault.POWER_CUT)
    assert minutes_until_above(unit, 8.0, timedelta(hours=6)) is not None
    unit.advance(timedelta(hours=1))
    assert not unit.state.compressor_on
    unit.end_fault(Fault.POWER_CUT)
    recovery = values(unit, timedelta(hours=3))
    assert max(recovery[-60:]) <= 6.5
    assert unit.faults == frozenset()


def test_thermostat_stuck_on_freezes_the_fridge() -> None:
    unit = fridge()
    unit.start_fault(Fault.THERMOSTAT_STUCK_ON)
    series = values(unit, timedelta(hours=24))
    assert min(series) < 0.0
    assert min(series) > -15.0  # limited by the evaporator, not runaway
    assert unit.state.compressor_on


def test_door_left_ajar_overwhelms_the_compressor() -> None:
    unit = fridge()
    unit.advance(timedelta(hours=1))
    unit.start_fault(Fault.DOOR_AJAR)
    assert minutes_until_above(unit, 8.0, timedelta(hours=3)) is not None
    assert unit.state.compressor_on


def test_stuck_sensor_repeats_itself_while_the_air_cycles() -> None:
    unit = fridge()
    unit.advance(timedelta(hours=1))
    unit.start_fault(Fault.SENSOR_STUCK)
    series = values(unit, timedelta(hours=2))
    assert len(set(series)) == 1
    unit.end_fault(Fault.SENSOR_STUCK)
    assert len(set(values(unit, timedelta(hours=1)))) > 5


def test_drifting_sensor_gains_its_rate_per_day() -> None:
    healthy, drifting = fridge(seed=5), fridge(seed=5)
    drifting.start_fault(Fault.SENSOR_DRIFT)
    day = timedelta(days=1)
    healthy.advance(day)
    drifting.advance(day)
    late_h = values(healthy, timedelta(hours=2))
    late_d = values(drifting, timedelta(hours=2))
    offset = statistics.fmean(late_d) - statistics.fmean(late_h)
    assert offset == pytest.approx(2.0 * 25 / 24, abs=0.15)
    # The air itself is untouched: same seed, same physics.
    assert drifting.state.air == pytest.approx(healthy.state.air)


def test_silent_and_failed_sensors() -> None:
    unit = fridge()
    unit.start_fault(Fault.SENSOR_SILENT)
    assert unit.read_sensor() is None
    unit.end_fault(Fault.SENSOR_SILENT)
    unit.start_fault(Fault.SENSOR_FAILURE)
    assert unit.read_sensor() == SensorSample(T0, None, SensorStatus.BAD)
    unit.end_fault(Fault.SENSOR_FAILURE)
    sample = unit.read_sensor()
    assert sample is not None
    assert sample.status is SensorStatus.GOOD


def test_out_of_range_values_are_clamped_and_uncertain() -> None:
    params = preset(UnitProfile.REFRIGERATOR)
    narrow = params.sensor.model_copy(update={"range_max": 9.0})
    unit = StorageUnitModel(params.model_copy(update={"sensor": narrow}), seed=1, start=T0)
    unit.start_fault(Fault.COMPRESSOR_FAILURE)
    unit.advance(timedelta(hours=6))
    sample = unit.read_sensor()
    assert sample is not None
    assert (sample.value, sample.status) == (9.0, SensorStatus.UNCERTAIN)


def test_values_have_the_sensor_resolution() -> None:
    for v in values(fridge(), timedelta(hours=2)):
        assert round(v * 10) == pytest.approx(v * 10, abs=1e-9)


def test_same_seed_same_series_and_another_seed_differs() -> None:
    a = values(fridge(seed=11, door_openings_per_hour=4.0), timedelta(hours=12))
    b = values(fridge(seed=11, door_openings_per_hour=4.0), timedelta(hours=12))
    c = values(fridge(seed=12, door_openings_per_hour=4.0), timedelta(hours=12))
    assert a == b
    assert a != c


def test_physics_does_not_depend_on_how_often_the_sensor_is_read() -> None:
    often, rarely = (
        fridge(seed=2, door_openings_per_hour=4.0),
        fridge(seed=2, door_openings_per_hour=4.0),
    )
    values(often, timedelta(hours=6), every=timedelta(seconds=10))
    values(rarely, timedelta(hours=6), every=timedelta(minutes=15))
    assert often.state.air == pytest.approx(rarely.state.air)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**32))
def test_any_seed_keeps_a_closed_fridge_in_range(seed: int) -> None:
    series = values(fridge(seed=seed), timedelta(hours=8), every=timedelta(minutes=5))
    assert min(series) >= 2.0
    assert max(series) <= 8.0


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        StorageUnitModel(preset(UnitProfile.FREEZER), seed=1, start=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="forward"):
        fridge().advance(timedelta(seconds=-1))
    with pytest.raises(ValidationError, match="evaporator"):
        preset(UnitProfile.REFRIGERATOR, evaporator_temperature=5.0)
    with pytest.raises(ValidationError):
        preset(UnitProfile.REFRIGERATOR, unknown_field=1)
