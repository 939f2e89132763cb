"""Scripted fault scenarios: timed events applied to the thermal models of a site.

A ``Scenario`` is a list of events at offsets from its start, each aimed at one storage unit:
open a door for a while, start a fault, end it. ``ScenarioPlayer`` advances the units to each
event's time before applying it, so an event lands at the exact simulated instant whatever the
caller's update rate. Named scenarios (``named(name, unit_id)``) cover every fault of
``simulators.thermal``; a scenario can also be loaded from YAML or JSON with
``Scenario.model_validate``.

>>> from datetime import UTC, datetime, timedelta
>>> from simulators.thermal import StorageUnitModel, UnitProfile, preset
>>> t0 = datetime(2026, 1, 1, tzinfo=UTC)
>>> unit = StorageUnitModel(preset(UnitProfile.REFRIGERATOR), seed=1, start=t0)
>>> player = ScenarioPlayer(named("power-cut", "fridge-1"), {"fridge-1": unit}, start=t0)
>>> player.advance_to(t0 + timedelta(minutes=20))
>>> sorted(unit.faults)
[<Fault.POWER_CUT: 'power-cut'>]
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from simulators.thermal import Fault, StorageUnitModel


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    at: Annotated[timedelta, Field(ge=timedelta(0))]
    unit: Annotated[str, Field(min_length=1)]


class OpenDoor(_Event):
    action: Literal["open-door"] = "open-door"
    duration: Annotated[timedelta, Field(gt=timedelta(0))]


class StartFault(_Event):
    action: Literal["start-fault"] = "start-fault"
    fault: Fault


class EndFault(_Event):
    action: Literal["end-fault"] = "end-fault"
    fault: Fault


Event = Annotated[OpenDoor | StartFault | EndFault, Field(discriminator="action")]


class Scenario(BaseModel):
    """A named list of timed events (offsets from the scenario's start)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Annotated[str, Field(min_length=1)]
    description: str = ""
    events: tuple[Event, ...] = ()


class UnknownUnitError(KeyError):
    """A scenario names a unit the site does not have."""


class ScenarioPlayer:
    """Applies a scenario's events to the units at their exact simulated times."""

    def __init__(
        self, scenario: Scenario, units: Mapping[str, StorageUnitModel], *, start: datetime
    ) -> None:
        missing = {e.unit for e in scenario.events} - set(units)
        if missing:
            raise UnknownUnitError(f"scenario {scenario.name!r} names unknown units {missing}")
        self.scenario = scenario
        self._units = units
        self._start = start
        self._pending = sorted(scenario.events, key=lambda e: e.at)

    @property
    def finished(self) -> bool:
        return not self._pending

    def advance_to(self, when: datetime) -> None:
        """Advances every unit to ``when``, applying the events due on the way."""
        while self._pending and self._start + self._pending[0].at <= when:
            event = self._pending.pop(0)
            at = self._start + event.at
            for unit in self._units.values():
                unit.advance_to(at)
            _apply(event, self._units[event.unit])
        for unit in self._units.values():
            unit.advance_to(when)


def _apply(event: Event, unit: StorageUnitModel) -> None:
    if isinstance(event, OpenDoor):
        unit.open_door(event.duration)
    elif isinstance(event, StartFault):
        unit.start_fault(event.fault)
    else:
        unit.end_fault(event.fault)


_LEAD = timedelta(minutes=10)

# (fault, how long it lasts or None for "until the end", description)
_FAULT_SCENARIOS: dict[str, tuple[Fault, timedelta | None, str]] = {
    "compressor-failure": (Fault.COMPRESSOR_FAILURE, None, "the compressor dies for good"),
    "door-ajar": (Fault.DOOR_AJAR, timedelta(hours=2), "door left ajar for two hours"),
    "power-cut": (Fault.POWER_CUT, timedelta(hours=3), "three-hour power cut, then recovery"),
    "freezing": (Fault.THERMOSTAT_STUCK_ON, None, "thermostat stuck on: the unit freezes"),
    "stuck-sensor": (Fault.SENSOR_STUCK, timedelta(hours=6), "probe repeats one value for 6 h"),
    "drifting-sensor": (Fault.SENSOR_DRIFT, None, "probe offset grows by its drift rate"),
    "silent-sensor": (Fault.SENSOR_SILENT, timedelta(hours=1), "logger silent for one hour"),
    "sensor-failure": (Fault.SENSOR_FAILURE, timedelta(hours=1), "probe failure for one hour"),
}


def names() -> list[str]:
    """Names accepted by ``named``."""
    return ["door-opening", "busy-day", *sorted(_FAULT_SCENARIOS)]


def named(name: str, unit: str) -> Scenario:
    """A built-in scenario aimed at ``unit``; the event starts 10 minutes in.

    >>> [e.action for e in named("silent-sensor", "f1").events]
    ['start-fault', 'end-fault']
    """
    if name == "door-opening":
        events: list[Event] = [OpenDoor(at=_LEAD, unit=unit, duration=timedelta(seconds=60))]
        return Scenario(name=name, description="one 60 s door opening", events=tuple(events))
    if name == "busy-day":
        events = [
            OpenDoor(at=_LEAD + timedelta(minutes=40 * i), unit=unit, duration=timedelta(seconds=d))
            for i, d in enumerate((20, 45, 15, 90, 30, 25, 60, 20))
        ]
        return Scenario(
            name=name, description="eight door openings of 15-90 s", events=tuple(events)
        )
    try:
        fault, lasts, description = _FAULT_SCENARIOS[name]
    except KeyError:
        raise ValueError(f"unknown scenario {name!r}; known: {', '.join(names())}") from None
    events = [StartFault(at=_LEAD, unit=unit, fault=fault)]
    if lasts is not None:
        events.append(EndFault(at=_LEAD + lasts, unit=unit, fault=fault))
    return Scenario(name=name, description=description, events=tuple(events))
