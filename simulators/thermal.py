"""A physical model of a cold-storage unit and its temperature probe: pure, seeded, fast.

The unit is two lumped thermal masses: the *air* (with shelves, walls and evaporator fins) and the
*product* load. Heat leaks in from the ambient through the cabinet, flows between air and product,
is pulled out by the evaporator while the compressor runs, and rushes in through an open door::

    C_air  dT_air/dt  = UA_amb (T_amb - T_air) + UA_prod (T_prod - T_air)
                        - on * UA_evap (T_air - T_evap) + door * UA_door (T_amb - T_air)
    C_prod dT_prod/dt = UA_prod (T_air - T_prod)

A thermostat switches the compressor with hysteresis around the set point (cut in at
``set_point + differential/2``, cut out at ``set_point - differential/2``) and keeps it off for a
minimum time after it stops, as real controllers do to protect the compressor. The evaporator
pulls heat in proportion to ``T_air - T_evap``, so a thermostat stuck on cools a fridge to a few
degrees below zero, not to absolute zero. The data-logger probe is a separate element: it follows
the air with a first-order lag, adds Gaussian noise and rounds to its resolution.

Time is simulated: ``advance(dt)`` integrates in fixed steps (5 s by default), so days of a unit
run in a fraction of a second. Two seeded ``random.Random`` streams keep physics (routine door
openings) apart from sensor noise: the unit's trajectory does not depend on how often it is read.

Public API:

- ``UnitProfile`` and ``preset(profile)``: parameters of a pharmacy fridge (2–8 °C), a freezer
  (−20 °C), an ultra-cold freezer (−70 °C) and a controlled room (15–25 °C).
- ``StorageUnitModel(params, seed=, start=)``: ``advance(dt)``, ``read_sensor()`` (a
  ``SensorSample``, or ``None`` while the sensor is silent), ``samples(until, every)``,
  ``open_door(duration)``, ``start_fault(kind)`` / ``end_fault(kind)``, ``state`` (the ground
  truth, a ``ThermalState``).
- ``truck_trip(start=, duration=, stops=, reefer_failure_at=, precooled=)``: a refrigerated
  truck's logger readings over a trip (``UnitProfile.REEFER_TRUCK``, doors opened at each ``Stop``).
- ``Fault``: ``COMPRESSOR_FAILURE``, ``DOOR_AJAR``, ``POWER_CUT``, ``THERMOSTAT_STUCK_ON``,
  ``SENSOR_STUCK``, ``SENSOR_DRIFT``, ``SENSOR_SILENT``, ``SENSOR_FAILURE``.

>>> from datetime import UTC, datetime, timedelta
>>> unit = StorageUnitModel(preset(UnitProfile.REFRIGERATOR), seed=1,
...                         start=datetime(2026, 1, 1, tzinfo=UTC))
>>> unit.advance(timedelta(hours=6))
>>> sample = unit.read_sensor()
>>> sample is not None and 2.0 < sample.value < 8.0 and sample.status is SensorStatus.GOOD
True
>>> unit.start_fault(Fault.COMPRESSOR_FAILURE)
>>> unit.advance(timedelta(hours=3))
>>> unit.state.air > 8.0
True
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator


class UnitProfile(StrEnum):
    """The kinds of storage unit the presets describe (after the storage profiles of DESIGN)."""

    REFRIGERATOR = "refrigerated"
    FREEZER = "frozen"
    ULTRA_COLD = "ultra-cold"
    CONTROLLED_ROOM = "controlled-room"
    REEFER_TRUCK = "reefer-truck"


class Fault(StrEnum):
    """Faults that can be started and ended on demand."""

    COMPRESSOR_FAILURE = "compressor-failure"  # no cooling capacity: slow warming
    DOOR_AJAR = "door-ajar"  # door not latched: a steady partial air exchange
    POWER_CUT = "power-cut"  # no cooling until power returns (the logger runs on battery)
    THERMOSTAT_STUCK_ON = "thermostat-stuck-on"  # compressor never stops: freezing
    SENSOR_STUCK = "sensor-stuck"  # probe repeats its last value; the device does not know
    SENSOR_DRIFT = "sensor-drift"  # probe offset grows linearly; the device does not know
    SENSOR_SILENT = "sensor-silent"  # logger sends nothing at all
    SENSOR_FAILURE = "sensor-failure"  # probe open/short circuit: the device reports a failure


class SensorStatus(StrEnum):
    """What the device itself knows about a measurement (OPC-UA's status classes)."""

    GOOD = "good"
    UNCERTAIN = "uncertain"  # outside the probe's measuring range, value clamped to it
    BAD = "bad"  # the device detected a probe failure: no value


class SensorParameters(BaseModel):
    """The data-logger probe: lag, noise, resolution, measuring range, drift when faulty."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    lag: Annotated[timedelta, Field(gt=timedelta(0))] = timedelta(seconds=60)
    noise_sd: Annotated[float, Field(ge=0)] = 0.05
    resolution: Annotated[float, Field(gt=0)] = 0.1
    range_min: float = -40.0
    range_max: float = 85.0
    drift_per_day: float = 2.0


class UnitParameters(BaseModel):
    """Thermal parameters of one unit (SI units: J/K, W/K, °C) and its thermostat."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    profile: UnitProfile
    set_point: float
    differential: Annotated[float, Field(gt=0)]
    ambient: float
    ambient_daily_swing: Annotated[float, Field(ge=0)] = 0.0
    air_capacity: Annotated[float, Field(gt=0)]
    product_capacity: Annotated[float, Field(gt=0)]
    cabinet_conductance: Annotated[float, Field(gt=0)]
    product_conductance: Annotated[float, Field(gt=0)]
    evaporator_conductance: Annotated[float, Field(gt=0)]
    evaporator_temperature: float
    door_conductance: Annotated[float, Field(gt=0)]
    ajar_fraction: Annotated[float, Field(gt=0, le=1)] = 0.25
    min_off_time: Annotated[timedelta, Field(ge=timedelta(0))] = timedelta(minutes=3)
    door_openings_per_hour: Annotated[float, Field(ge=0)] = 0.0
    door_open_min: Annotated[timedelta, Field(gt=timedelta(0))] = timedelta(seconds=5)
    door_open_max: Annotated[timedelta, Field(gt=timedelta(0))] = timedelta(seconds=20)
    step: Annotated[timedelta, Field(gt=timedelta(0), le=timedelta(seconds=30))] = timedelta(
        seconds=5
    )
    sensor: SensorParameters = SensorParameters()

    @model_validator(mode="after")
    def _consistent(self) -> UnitParameters:
        if self.evaporator_temperature >= self.set_point - self.differential / 2:
            raise ValueError("evaporator_temperature must be below the thermostat's cut-out")
        if self.door_open_max < self.door_open_min:
            raise ValueError("door_open_max is shorter than door_open_min")
        return self


def preset(profile: UnitProfile, **overrides: object) -> UnitParameters:
    """Parameters of a typical unit of that profile; ``overrides`` replace single fields.

    >>> preset(UnitProfile.FREEZER).set_point
    -20.0
    >>> preset(UnitProfile.REFRIGERATOR, set_point=4.0).set_point
    4.0
    """
    base = dict(_PRESETS[profile])
    base.update(overrides)
    return UnitParameters.model_validate({"profile": profile, **base})


# A glass-door pharmacy fridge of ~400 l with ~25 kg of product cycles 3-4 times an hour and,
# with a dead compressor, passes 8 °C after some 30-45 minutes. The freezer, ultra-cold and room
# figures follow the same reasoning (insulation, load, refrigeration capacity at set point).
_PRESETS: dict[UnitProfile, dict[str, object]] = {
    UnitProfile.REFRIGERATOR: {
        "set_point": 5.0,
        "differential": 2.0,
        "ambient": 22.0,
        "air_capacity": 15_000.0,
        "product_capacity": 80_000.0,
        "cabinet_conductance": 3.0,
        "product_conductance": 15.0,
        "evaporator_conductance": 10.0,
        "evaporator_temperature": -10.0,
        "door_conductance": 70.0,
    },
    UnitProfile.FREEZER: {
        "set_point": -20.0,
        "differential": 3.0,
        "ambient": 22.0,
        "air_capacity": 20_000.0,
        "product_capacity": 100_000.0,
        "cabinet_conductance": 2.0,
        "product_conductance": 15.0,
        "evaporator_conductance": 16.0,
        "evaporator_temperature": -36.0,
        "door_conductance": 40.0,
    },
    UnitProfile.ULTRA_COLD: {
        "set_point": -70.0,
        "differential": 4.0,
        "ambient": 22.0,
        "air_capacity": 30_000.0,
        "product_capacity": 80_000.0,
        "cabinet_conductance": 1.2,
        "product_conductance": 10.0,
        "evaporator_conductance": 20.0,
        "evaporator_temperature": -90.0,
        "door_conductance": 30.0,
        "min_off_time": timedelta(minutes=5),
        "sensor": SensorParameters(range_min=-100.0, range_max=50.0, noise_sd=0.1),
    },
    UnitProfile.CONTROLLED_ROOM: {
        "set_point": 20.0,
        "differential": 2.0,
        "ambient": 28.0,
        "ambient_daily_swing": 3.0,
        "air_capacity": 500_000.0,
        "product_capacity": 2_000_000.0,
        "cabinet_conductance": 60.0,
        "product_conductance": 200.0,
        "evaporator_conductance": 160.0,
        "evaporator_temperature": 8.0,
        "door_conductance": 100.0,
        "sensor": SensorParameters(lag=timedelta(seconds=120)),
    },
    # A refrigerated trailer (~13 m, 2-8 °C) on a summer day: a leaky box (doors, seals,
    # floor) whose air mass includes its panels and floor (~450 kg), pallets of product with a
    # large heat capacity, a reefer unit of ~3 kW at set point, and rear doors that let the
    # cold out fast when opened at a stop.
    UnitProfile.REEFER_TRUCK: {
        "set_point": 5.0,
        "differential": 2.0,
        "ambient": 30.0,
        "air_capacity": 400_000.0,
        "product_capacity": 1_500_000.0,
        "cabinet_conductance": 45.0,
        "product_conductance": 250.0,
        "evaporator_conductance": 250.0,
        "evaporator_temperature": -8.0,
        "door_conductance": 900.0,
        "min_off_time": timedelta(minutes=2),
    },
}


@dataclass(frozen=True, slots=True)
class SensorSample:
    """One measurement as the logger reports it: device-side status, value rounded."""

    time: datetime
    value: float | None
    status: SensorStatus


@dataclass(frozen=True, slots=True)
class ThermalState:
    """The ground truth of a unit at ``time`` (what no sensor sees exactly)."""

    time: datetime
    air: float
    product: float
    probe: float
    compressor_on: bool
    door_open: bool
    faults: frozenset[Fault]


class StorageUnitModel:
    """One storage unit and its logger probe, stepped in simulated time (see module docstring)."""

    def __init__(
        self, params: UnitParameters, *, seed: int, start: datetime, precooled: bool = True
    ) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be an aware datetime")
        self.params = params
        self._time = start.astimezone(UTC)
        # Not pre-cooled: cold product loaded into a box still at ambient (a truck whose reefer
        # was started at loading instead of an hour before).
        self._air = params.set_point if precooled else params.ambient
        self._product = params.set_point
        self._probe = self._air
        self._compressor = False
        self._off_since = self._time - params.min_off_time
        self._door_until: datetime | None = None
        self._faults: set[Fault] = set()
        self._stuck_value: float | None = None
        self._drift_since: datetime | None = None
        # Simulation randomness, reproducible by design: not for anything secret.
        seeds = random.Random(seed)  # noqa: S311
        self._physics_rng = random.Random(seeds.getrandbits(64))  # noqa: S311
        self._sensor_rng = random.Random(seeds.getrandbits(64))  # noqa: S311

    @property
    def time(self) -> datetime:
        return self._time

    @property
    def state(self) -> ThermalState:
        return ThermalState(
            time=self._time,
            air=self._air,
            product=self._product,
            probe=self._probe,
            compressor_on=self._compressor,
            door_open=self._door_open(),
            faults=frozenset(self._faults),
        )

    @property
    def faults(self) -> frozenset[Fault]:
        return frozenset(self._faults)

    def open_door(self, duration: timedelta) -> None:
        """Opens the door now for ``duration`` (extends an opening already under way)."""
        until = self._time + duration
        if self._door_until is None or until > self._door_until:
            self._door_until = until

    def start_fault(self, fault: Fault) -> None:
        """Starts ``fault`` now; starting one already active changes nothing."""
        if fault in self._faults:
            return
        if fault is Fault.SENSOR_STUCK:
            self._stuck_value = self._measure_raw()
        elif fault is Fault.SENSOR_DRIFT:
            self._drift_since = self._time
        self._faults.add(fault)

    def end_fault(self, fault: Fault) -> None:
        """Ends ``fault`` (power returns, door closed, probe replaced...)."""
        self._faults.discard(fault)
        if fault is Fault.SENSOR_DRIFT:
            self._drift_since = None

    def advance(self, duration: timedelta) -> None:
        """Integrates the unit forward by ``duration`` of simulated time."""
        if duration < timedelta(0):
            raise ValueError("time only moves forward")
        end = self._time + duration
        step = self.params.step
        while self._time < end:
            dt = min(step, end - self._time)
            self._step(dt.total_seconds())
            self._time += dt

    def advance_to(self, when: datetime) -> None:
        """Integrates up to ``when``; a time in the past changes nothing."""
        if when > self._time:
            self.advance(when - self._time)

    def read_sensor(self) -> SensorSample | None:
        """The logger's measurement now, or ``None`` when the sensor is silent."""
        if Fault.SENSOR_SILENT in self._faults:
            return None
        if Fault.SENSOR_FAILURE in self._faults:
            return SensorSample(self._time, None, SensorStatus.BAD)
        sensor = self.params.sensor
        if Fault.SENSOR_STUCK in self._faults and self._stuck_value is not None:
            raw = self._stuck_value
        else:
            raw = self._measure_raw()
        status = SensorStatus.GOOD
        if not sensor.range_min <= raw <= sensor.range_max:
            raw = min(max(raw, sensor.range_min), sensor.range_max)
            status = SensorStatus.UNCERTAIN
        value = round(round(raw / sensor.resolution) * sensor.resolution, 6)
        return SensorSample(self._time, value, status)

    def samples(self, until: datetime, every: timedelta) -> Iterator[SensorSample | None]:
        """Advances by ``every`` until ``until``, yielding ``read_sensor()`` after each step."""
        if every <= timedelta(0):
            raise ValueError("every must be positive")
        while self._time + every <= until:
            self.advance(every)
            yield self.read_sensor()

    def ambient_at(self, when: datetime) -> float:
        """Ambient temperature, with its daily swing peaking at 15:00 UTC."""
        p = self.params
        if p.ambient_daily_swing == 0:
            return p.ambient
        hours = when.hour + when.minute / 60 + when.second / 3600
        return p.ambient + p.ambient_daily_swing * math.sin(2 * math.pi * (hours - 9) / 24)

    def _measure_raw(self) -> float:
        sensor = self.params.sensor
        raw = self._probe + self._sensor_rng.gauss(0.0, sensor.noise_sd)
        if self._drift_since is not None:
            days = (self._time - self._drift_since).total_seconds() / 86_400
            raw += sensor.drift_per_day * days
        return raw

    def _door_open(self) -> bool:
        return self._door_until is not None and self._time < self._door_until

    def _door_factor(self) -> float:
        if self._door_open():
            return 1.0
        return self.params.ajar_fraction if Fault.DOOR_AJAR in self._faults else 0.0

    def _routine_door(self, dt: float) -> None:
        p = self.params
        if p.door_openings_per_hour <= 0 or self._door_open():
            return
        if self._physics_rng.random() < p.door_openings_per_hour * dt / 3600:
            low, high = p.door_open_min.total_seconds(), p.door_open_max.total_seconds()
            self.open_door(timedelta(seconds=self._physics_rng.uniform(low, high)))

    def _thermostat(self) -> bool:
        p = self.params
        if Fault.POWER_CUT in self._faults:
            return False
        if Fault.THERMOSTAT_STUCK_ON in self._faults:
            return True
        if self._compressor:
            return self._air > p.set_point - p.differential / 2
        rested = self._time - self._off_since >= p.min_off_time
        return rested and self._air >= p.set_point + p.differential / 2

    def _step(self, dt: float) -> None:
        p = self.params
        self._routine_door(dt)
        running = self._thermostat()
        if self._compressor and not running:
            self._off_since = self._time
        self._compressor = running
        cooling = running and Fault.COMPRESSOR_FAILURE not in self._faults
        ambient = self.ambient_at(self._time)
        flow_in = p.cabinet_conductance * (ambient - self._air)
        flow_in += p.door_conductance * self._door_factor() * (ambient - self._air)
        to_product = p.product_conductance * (self._air - self._product)
        pulled = p.evaporator_conductance * (self._air - p.evaporator_temperature) if cooling else 0
        self._air += dt * (flow_in - to_product - pulled) / p.air_capacity
        self._product += dt * to_product / p.product_capacity
        # The probe's first-order lag, integrated exactly so any step size is stable.
        alpha = 1.0 - math.exp(-dt / p.sensor.lag.total_seconds())
        self._probe += alpha * (self._air - self._probe)


@dataclass(frozen=True, slots=True)
class Stop:
    """A delivery stop ``at`` into the trip, rear doors open for ``doors_open``."""

    at: timedelta
    doors_open: timedelta


def truck_trip(
    *,
    start: datetime,
    duration: timedelta,
    stops: tuple[Stop, ...] = (),
    reefer_failure_at: timedelta | None = None,
    precooled: bool = True,
    every: timedelta = timedelta(minutes=5),
    seed: int = 0,
    params: UnitParameters | None = None,
) -> list[SensorSample]:
    """A refrigerated truck's logger readings over a trip: doors opened at each stop, the
    reefer unit failing ``reefer_failure_at`` into the trip (it does not come back), and the
    trailer loaded without pre-cooling when ``precooled`` is False.

    Readings above 8 °C (every 5 minutes over 4 hours): a 5-minute stop warms the air for
    about ten minutes; a warm trailer loaded without pre-cooling for a quarter of an hour; a
    reefer failing after an hour for the rest of the trip.

    >>> from datetime import UTC, datetime, timedelta
    >>> t0, h = datetime(2026, 7, 1, 6, tzinfo=UTC), timedelta(hours=1)
    >>> def warm(samples): return sum(1 for s in samples if s.value is not None and s.value > 8)
    >>> warm(truck_trip(start=t0, duration=4 * h, stops=(Stop(2 * h, timedelta(minutes=5)),)))
    2
    >>> warm(truck_trip(start=t0, duration=4 * h, precooled=False))
    3
    >>> warm(truck_trip(start=t0, duration=4 * h, reefer_failure_at=h))
    31
    """
    model = StorageUnitModel(
        params or preset(UnitProfile.REEFER_TRUCK), seed=seed, start=start, precooled=precooled
    )
    events: list[tuple[timedelta, str, timedelta]] = [
        (stop.at, "stop", stop.doors_open) for stop in stops
    ]
    if reefer_failure_at is not None:
        events.append((reefer_failure_at, "failure", timedelta(0)))
    out: list[SensorSample] = []
    pending = sorted(events)
    t = timedelta(0)
    while t + every <= duration:
        t += every
        while pending and pending[0][0] <= t:
            at, kind, length = pending.pop(0)
            model.advance_to(start + at)
            if kind == "stop":
                model.open_door(length)
            else:
                model.start_fault(Fault.COMPRESSOR_FAILURE)
        model.advance_to(start + t)
        sample = model.read_sensor()
        if sample is not None:
            out.append(sample)
    return out
