"""The demo site the temperature simulators share: storage units, their loggers, a clock.

A ``SiteSpec`` lists storage units; each has a thermal profile, a seed and one data logger,
reached either through the OPC-UA server (``OpcUaLogger``) or over MQTT in one of four device
shapes (``MqttLogger``). ``SiteRuntime`` builds the thermal models of a site, plays an optional
scenario on them and advances them to the clock's time, so the OPC-UA server and the MQTT
loggers can drive the same units in one process, or separate units in two.

``SimulatedClock`` runs simulated time at ``scale`` times real time from ``start`` (a monotonic
clock underneath, so a wall-clock jump does not disturb it). Tests may pass any object with a
``now()`` method instead.

>>> site = demo_site()
>>> [u.unit_id for u in site.units if u.logger.transport == "opcua"]
['fridge-1', 'ultra-1']
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from protocols.records import DeviceId
from simulators.scenarios import Scenario, ScenarioPlayer, named, names
from simulators.thermal import (
    SensorParameters,
    StorageUnitModel,
    UnitParameters,
    UnitProfile,
    preset,
)


class Clock(Protocol):
    def now(self) -> datetime: ...


class SimulatedClock:
    """Simulated UTC time running ``scale`` times faster than real time from ``start``."""

    def __init__(
        self,
        start: datetime | None = None,
        scale: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if scale <= 0:
            raise ValueError("scale must be positive")
        self.start = (start or datetime.now(UTC)).astimezone(UTC)
        self.scale = scale
        self._monotonic = monotonic
        self._origin = monotonic()

    def now(self) -> datetime:
        return self.start + timedelta(seconds=(self._monotonic() - self._origin) * self.scale)

    def real_seconds(self, simulated: timedelta) -> float:
        """How long ``simulated`` time takes in real seconds."""
        return simulated.total_seconds() / self.scale


class Shape(StrEnum):
    """The MQTT payload shapes the loggers speak (see docs/simulators-temperature.md)."""

    PLAIN = "plain"  # coldtrace/<site>/<sensor_id>/reading, our own JSON
    CHIRPSTACK = "chirpstack"  # ChirpStack v4 uplink event of a Milesight EM300-TH
    TASMOTA = "tasmota"  # tele/<device>/SENSOR with a DS18B20, local time without offset
    SHELLY = "shelly"  # <device_id>/status/temperature:0, no timestamp


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OpcUaLogger(_Spec):
    """The unit is an object of the OPC-UA server, its probe ``<unit_id>.Temperature``."""

    transport: Literal["opcua"] = "opcua"
    clock_offset: timedelta = timedelta(0)


class MqttLogger(_Spec):
    """A logger publishing over MQTT. ``device_id`` means, by shape: the sensor id (plain), the
    DevEUI (chirpstack, 16 hex digits), the Tasmota topic, the Shelly device id."""

    transport: Literal["mqtt"] = "mqtt"
    shape: Shape
    device_id: DeviceId
    interval: Annotated[timedelta, Field(gt=timedelta(0))] = timedelta(minutes=1)
    timezone: str = "UTC"
    clock_offset: timedelta = timedelta(0)
    buffer_when_offline: bool | None = None
    backlog_limit: Annotated[int, Field(ge=1)] = 10_000
    application_id: str = "6f1c5d3e-0b8a-4c0e-9a7d-2f5b8e1c4a90"
    probe_id: str = "01191ED79247"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as err:
            raise ValueError(f"unknown time zone {value!r}") from err
        return value

    @property
    def buffers(self) -> bool:
        """Whether readings taken while the broker is away are kept and sent later.

        Our loggers and ChirpStack (which queues for its MQTT integration) keep them; Tasmota
        and Shelly publish telemetry only while connected, as the real firmware does.
        """
        if self.buffer_when_offline is not None:
            return self.buffer_when_offline
        return self.shape in (Shape.PLAIN, Shape.CHIRPSTACK)


class UnitSpec(_Spec):
    unit_id: DeviceId
    name: str
    profile: UnitProfile
    set_point: float | None = None
    seed: int = 0
    door_openings_per_hour: Annotated[float, Field(ge=0)] = 0.0
    sensor: SensorParameters | None = None  # None: the profile's usual probe
    logger: Annotated[OpcUaLogger | MqttLogger, Field(discriminator="transport")]

    def parameters(self) -> UnitParameters:
        overrides: dict[str, object] = {"door_openings_per_hour": self.door_openings_per_hour}
        if self.set_point is not None:
            overrides["set_point"] = self.set_point
        if self.sensor is not None:
            overrides["sensor"] = self.sensor
        return preset(self.profile, **overrides)


class SiteSpec(_Spec):
    site_id: DeviceId
    units: tuple[UnitSpec, ...]

    def unit(self, unit_id: str) -> UnitSpec:
        for spec in self.units:
            if spec.unit_id == unit_id:
                return spec
        raise KeyError(unit_id)


def demo_site() -> SiteSpec:
    """A pharmacy warehouse: two fridges, a freezer, an ultra-cold freezer, a controlled room."""
    return SiteSpec(
        site_id="site-1",
        units=(
            UnitSpec(
                unit_id="fridge-1",
                name="Pharmacy fridge 1",
                profile=UnitProfile.REFRIGERATOR,
                seed=101,
                door_openings_per_hour=2.0,
                logger=OpcUaLogger(),
            ),
            UnitSpec(
                unit_id="ultra-1",
                name="Ultra-cold freezer",
                profile=UnitProfile.ULTRA_COLD,
                seed=102,
                door_openings_per_hour=0.2,
                logger=OpcUaLogger(),
            ),
            UnitSpec(
                unit_id="fridge-2",
                name="Pharmacy fridge 2",
                profile=UnitProfile.REFRIGERATOR,
                seed=103,
                door_openings_per_hour=2.0,
                logger=MqttLogger(shape=Shape.PLAIN, device_id="fridge-2.t"),
            ),
            UnitSpec(
                unit_id="freezer-1",
                name="Freezer",
                profile=UnitProfile.FREEZER,
                seed=104,
                door_openings_per_hour=1.0,
                logger=MqttLogger(
                    shape=Shape.CHIRPSTACK,
                    device_id="24e124136b502217",
                    interval=timedelta(minutes=10),
                ),
            ),
            UnitSpec(
                unit_id="room-1",
                name="Controlled room",
                profile=UnitProfile.CONTROLLED_ROOM,
                seed=105,
                door_openings_per_hour=4.0,
                logger=MqttLogger(
                    shape=Shape.TASMOTA,
                    device_id="tasmota_5C3F1A",
                    timezone="Europe/Paris",
                    interval=timedelta(minutes=5),
                ),
            ),
            UnitSpec(
                unit_id="room-2",
                name="Controlled room, dispatch",
                profile=UnitProfile.CONTROLLED_ROOM,
                seed=106,
                door_openings_per_hour=6.0,
                logger=MqttLogger(shape=Shape.SHELLY, device_id="shellyhtg3-84fce63ad204"),
            ),
        ),
    )


class SiteRuntime:
    """The thermal models of a site's units, advanced together, with an optional scenario."""

    def __init__(
        self,
        site: SiteSpec,
        *,
        start: AwareDatetime,
        scenario: Scenario | None = None,
        transport: Literal["opcua", "mqtt"] | None = None,
    ) -> None:
        self.site = site
        self.specs = {
            u.unit_id: u for u in site.units if transport is None or u.logger.transport == transport
        }
        self.models = {
            uid: StorageUnitModel(spec.parameters(), seed=spec.seed, start=start)
            for uid, spec in self.specs.items()
        }
        self._time = start
        self._player = (
            ScenarioPlayer(scenario, self.models, start=start) if scenario is not None else None
        )

    @property
    def time(self) -> datetime:
        return self._time

    def advance_to(self, when: datetime) -> None:
        if when <= self._time:
            return
        if self._player is not None:
            self._player.advance_to(when)
        for model in self.models.values():
            model.advance_to(when)
        self._time = when


# --- command-line plumbing shared by ``coldtrace sim opcua`` and ``coldtrace sim mqtt`` ---


def add_site_arguments(parser: argparse.ArgumentParser) -> None:
    """Options every temperature simulator takes: site, time, scenario, duration."""
    parser.add_argument("--site", type=Path, help="site description (YAML); default: demo site")
    parser.add_argument(
        "--time-scale", type=float, default=1.0, help="simulated seconds per real second"
    )
    parser.add_argument("--start", help="simulated start time, ISO 8601 with offset (default: now)")
    parser.add_argument("--scenario", help="a built-in scenario: " + ", ".join(names()))
    parser.add_argument("--scenario-unit", help="the unit the built-in scenario targets")
    parser.add_argument("--scenario-file", type=Path, help="a scenario (YAML)")
    parser.add_argument("--duration", type=float, help="stop after this many real seconds")


def add_opcua_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``coldtrace sim opcua``."""
    add_site_arguments(parser)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4840, help="0: a free port")
    parser.add_argument(
        "--security",
        default="None,Basic256Sha256_Sign,Basic256Sha256_SignAndEncrypt",
        help="comma-separated security modes offered",
    )
    parser.add_argument("--certificate", type=Path, help="server certificate (PEM or DER)")
    parser.add_argument("--private-key", type=Path, help="its private key (PEM or DER)")
    parser.add_argument("--update-interval", type=float, default=1.0, help="real seconds")


def add_mqtt_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``coldtrace sim mqtt``."""
    add_site_arguments(parser)
    parser.add_argument(
        "--broker",
        default=os.environ.get("COLDTRACE_SIM_MQTT_URL", "mqtt://127.0.0.1:1883"),
        help="mqtt://host:port (default: $COLDTRACE_SIM_MQTT_URL or mqtt://127.0.0.1:1883)",
    )


def runtime_from_args(
    args: argparse.Namespace, transport: Literal["opcua", "mqtt"]
) -> tuple[SiteRuntime, SimulatedClock]:
    """The site runtime and clock the options describe; bad options end the command."""
    import yaml

    site = demo_site()
    if args.site is not None:
        site = SiteSpec.model_validate(yaml.safe_load(args.site.read_text()))
    scenario: Scenario | None = None
    if args.scenario_file is not None:
        scenario = Scenario.model_validate(yaml.safe_load(args.scenario_file.read_text()))
    elif args.scenario is not None:
        if args.scenario_unit is None:
            raise SystemExit("--scenario needs --scenario-unit")
        scenario = named(args.scenario, args.scenario_unit)
    start = datetime.fromisoformat(args.start) if args.start else datetime.now(UTC)
    if start.tzinfo is None:
        raise SystemExit("--start needs a UTC offset, e.g. 2026-11-25T08:00:00+00:00")
    clock = SimulatedClock(start, scale=args.time_scale)
    runtime = SiteRuntime(site, start=clock.start, scenario=scenario, transport=transport)
    return runtime, clock


async def run_for(duration: float | None) -> None:
    """Waits ``duration`` real seconds, or until cancelled (Ctrl-C) when it is None."""
    if duration is None:
        await asyncio.Event().wait()
    else:
        await asyncio.sleep(duration)
