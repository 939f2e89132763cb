"""Scenarios and the site runtime: events land at their exact simulated time, on the right unit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from simulators.scenarios import (
    OpenDoor,
    Scenario,
    ScenarioPlayer,
    StartFault,
    UnknownUnitError,
    named,
    names,
)
from simulators.site import MqttLogger, Shape, SimulatedClock, SiteRuntime, demo_site
from simulators.thermal import Fault, StorageUnitModel, UnitProfile, preset

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def fridge() -> StorageUnitModel:
    return StorageUnitModel(preset(UnitProfile.REFRIGERATOR), seed=1, start=T0)


def test_every_named_scenario_builds_and_plays() -> None:
    for name in names():
        unit = fridge()
        player = ScenarioPlayer(named(name, "f"), {"f": unit}, start=T0)
        player.advance_to(T0 + timedelta(hours=12))
        assert player.finished
        assert unit.time == T0 + timedelta(hours=12)


def test_events_apply_at_their_exact_time_whatever_the_step() -> None:
    coarse, fine = fridge(), fridge()
    scenario = named("power-cut", "f")
    p1 = ScenarioPlayer(scenario, {"f": coarse}, start=T0)
    p2 = ScenarioPlayer(scenario, {"f": fine}, start=T0)
    p1.advance_to(T0 + timedelta(hours=4))  # one jump over both events
    t = T0
    while t < T0 + timedelta(hours=4):
        t += timedelta(minutes=7)
        p2.advance_to(min(t, T0 + timedelta(hours=4)))
    assert coarse.state.air == pytest.approx(fine.state.air)
    assert coarse.faults == fine.faults == frozenset()


def test_fault_is_active_between_start_and_end() -> None:
    unit = fridge()
    player = ScenarioPlayer(named("silent-sensor", "f"), {"f": unit}, start=T0)
    player.advance_to(T0 + timedelta(minutes=9))
    assert unit.read_sensor() is not None
    player.advance_to(T0 + timedelta(minutes=11))
    assert unit.read_sensor() is None
    player.advance_to(T0 + timedelta(minutes=71))
    assert unit.read_sensor() is not None


def test_scenario_from_yaml_and_bad_ones_refused(tmp_path: Path) -> None:
    text = """
name: lunch-rush
events:
  - {action: open-door, at: PT30M, unit: f, duration: PT90S}
  - {action: start-fault, at: PT1H, unit: f, fault: door-ajar}
"""
    (tmp_path / "s.yaml").write_text(text)
    scenario = Scenario.model_validate(yaml.safe_load((tmp_path / "s.yaml").read_text()))
    assert isinstance(scenario.events[0], OpenDoor)
    assert isinstance(scenario.events[1], StartFault)
    assert scenario.events[1].fault is Fault.DOOR_AJAR
    with pytest.raises(ValidationError):
        Scenario.model_validate(
            {"name": "x", "events": [{"action": "explode", "at": 0, "unit": "f"}]}
        )
    with pytest.raises(UnknownUnitError):
        ScenarioPlayer(scenario, {"other": fridge()}, start=T0)
    with pytest.raises(ValueError, match="unknown scenario"):
        named("meteor", "f")


def test_site_runtime_filters_by_transport_and_advances_together() -> None:
    site = demo_site()
    opcua = SiteRuntime(site, start=T0, transport="opcua")
    mqtt = SiteRuntime(site, start=T0, transport="mqtt", scenario=named("freezing", "fridge-2"))
    assert set(opcua.models) == {"fridge-1", "ultra-1"}
    assert set(mqtt.models) == {"fridge-2", "freezer-1", "room-1", "room-2"}
    mqtt.advance_to(T0 + timedelta(hours=1))
    assert {m.time for m in mqtt.models.values()} == {T0 + timedelta(hours=1)}
    assert Fault.THERMOSTAT_STUCK_ON in mqtt.models["fridge-2"].faults
    with pytest.raises(UnknownUnitError):
        SiteRuntime(site, start=T0, transport="opcua", scenario=named("freezing", "fridge-2"))


def test_logger_specs_are_validated() -> None:
    with pytest.raises(ValidationError, match="time zone"):
        MqttLogger(shape=Shape.TASMOTA, device_id="t", timezone="Mars/Olympus")
    assert MqttLogger(shape=Shape.PLAIN, device_id="p").buffers
    assert not MqttLogger(shape=Shape.SHELLY, device_id="s").buffers
    assert MqttLogger(shape=Shape.SHELLY, device_id="s", buffer_when_offline=True).buffers


def test_simulated_clock_runs_at_its_scale() -> None:
    ticks = iter([100.0, 100.0, 101.5])
    clock = SimulatedClock(T0, scale=60, monotonic=lambda: next(ticks))
    assert clock.now() == T0
    assert clock.now() == T0 + timedelta(seconds=90)
    assert clock.real_seconds(timedelta(minutes=30)) == 30.0
    with pytest.raises(ValueError, match="positive"):
        SimulatedClock(T0, scale=0)
