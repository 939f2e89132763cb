"""Typed configuration of the edge agent: a YAML file, overridden by ``COLDTRACE_EDGE_*`` variables.

Read once by ``coldtrace edge run --config FILE`` and passed down as objects. Nested keys are
reached with ``__`` in variable names (``COLDTRACE_EDGE_CLOUD__TOKEN``); the gateway token may
also come from a file (``cloud.token_file``, e.g. a container secret). Durations are seconds as a
number or ISO 8601 (``PT5M``). A wrong file is refused at start by :func:`load_config` with one
line per problem, each naming the field (``outbox.max_bytes: Input should be greater than…``).

The source sections (``llrp``, ``doors``, ``mqtt``, ``opcua``) are the config models of the
source modules themselves, composed here; cross-section rules (a door's reader and antennas
exist, names are unique) are checked here.

Exception tree::

    ConfigError    the file is missing, not YAML, or does not validate
"""

from __future__ import annotations

import contextvars
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from edge.alarms import LocalAlarmConfig, MqttBrokerConfig
from edge.notify import NotifyConfig
from edge.outbox import OutboxLimits, OverflowPolicy
from edge.portal import DoorConfig
from edge.sources.llrp import LlrpReaderConfig
from edge.sources.mqtt import MqttSourceConfig
from edge.sources.opcua import OpcUaEndpointConfig
from edge.uplink import UplinkConfig
from protocols.records import DeviceId

PositiveDelta = Annotated[timedelta, Field(gt=timedelta(0))]

_YAML_FILE: contextvars.ContextVar[Path | None] = contextvars.ContextVar("yaml", default=None)


class ConfigError(ValueError):
    """The configuration cannot be used; the message names each offending field."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CloudConfig(UplinkConfig):
    """The uplink settings plus where the token comes from (``token`` or ``token_file``)."""

    token_file: Path | None = None

    @model_validator(mode="before")
    @classmethod
    def _token_from_file(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("token") or not data.get("token_file"):
            return data
        path = Path(data["token_file"])
        try:
            token = path.read_text(encoding="utf-8").strip()
        except OSError as err:
            raise ValueError(f"token_file {path} cannot be read: {err.strerror}") from err
        if not token:
            raise ValueError(f"token_file {path} is empty")
        return {**data, "token": token}

    def uplink(self) -> UplinkConfig:
        return UplinkConfig.model_validate(self.model_dump(exclude={"token_file"}))


class OutboxConfig(_Section):
    path: Path = Path("/data/coldtrace/outbox.db")
    max_records: Annotated[int, Field(ge=1000)] = 5_000_000
    max_bytes: Annotated[int, Field(ge=1024 * 1024)] = 2 * 1024**3
    high_water: Annotated[float, Field(gt=0, lt=1)] = 0.8
    fill_rate_window: PositiveDelta = timedelta(minutes=10)
    overflow: OverflowPolicy = OverflowPolicy.BLOCK
    watch_interval: PositiveDelta = timedelta(seconds=10)
    """How often depth, high water and time to full are checked."""
    filling_alarm: Annotated[timedelta, Field(ge=timedelta(0))] = timedelta(hours=6)
    """The outbox alarm (``outbox/high_water``) is raised below high water too when the outbox
    would be full within this time at the recent rate (0: at high water only)."""
    filling_min_ratio: Annotated[float, Field(ge=0, lt=1)] = 0.05
    """...and it holds at least this share, so the estimate rests on a backlog, not on one
    batch waiting for its acknowledgement."""
    dedupe_window: PositiveDelta = timedelta(days=1)
    """How long a committed reading's identity is kept to drop a broker's redelivery of it."""
    headroom: Annotated[float, Field(ge=0, lt=0.5)] = 0.05
    """Share of ``max_bytes`` (the outbox's footprint on disk) kept free for the writes that
    empty it."""
    reserve_bytes: Annotated[int, Field(ge=0)] = 32 * 1024**2
    """A reserve file beside the outbox, released when the disk is full so acks still pass."""
    disk_retry: PositiveDelta = timedelta(seconds=5)
    """After a full filesystem, how often a waiting append tries again (besides after acks)."""
    replay_window: Annotated[timedelta, Field(ge=timedelta(0))] = timedelta(days=7)
    """How long acknowledged records are kept to refill a cloud restored from a backup (bounded
    by ``max_bytes``/``max_records``: kept records give way to new ones; 0 keeps none)."""

    def limits(self) -> OutboxLimits:
        return OutboxLimits(
            max_records=self.max_records,
            max_bytes=self.max_bytes,
            high_water=self.high_water,
            fill_rate_window=self.fill_rate_window,
            overflow=self.overflow,
            dedupe_window=self.dedupe_window,
            headroom=self.headroom,
            reserve_bytes=self.reserve_bytes,
            disk_retry=self.disk_retry,
            replay_window=self.replay_window,
        )


class HealthConfig(_Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    """Loopback by default; a Prometheus on another host needs ``0.0.0.0`` (and a token)."""
    port: Annotated[int, Field(ge=0, le=65535)] = 9100
    """0 picks a free port (tests)."""
    token: SecretStr | None = None
    """When set, ``/healthz`` and ``/metrics`` need ``Authorization: Bearer <token>``."""


class ClockConfig(_Section):
    max_jump: PositiveDelta = timedelta(seconds=30)
    check_interval: PositiveDelta = timedelta(seconds=10)


class SupervisionConfig(_Section):
    restart_initial: PositiveDelta = timedelta(seconds=1)
    restart_max: PositiveDelta = timedelta(minutes=2)
    shutdown_flush: Annotated[timedelta, Field(ge=timedelta(0))] = timedelta(seconds=5)
    """On SIGTERM, how long the uplink may keep sending what is committed before exiting."""
    stop_grace: PositiveDelta = timedelta(seconds=10)
    """On SIGTERM, how long the sources, the commits in flight and the last passages get in all
    before they are abandoned (a source blocked on a full outbox; its device re-sends what it
    did not ack). A stop takes at most about ``stop_grace + shutdown_flush``."""
    restart_reset_after: PositiveDelta = timedelta(minutes=1)
    """A source that ran this long before failing restarts its backoff from ``restart_initial``;
    one failing sooner (say, on every redelivered message) backs off further each time."""


class AlarmsConfig(LocalAlarmConfig):
    broker: MqttBrokerConfig | None = None
    """The site broker for the alarm topic; without it alarms are logged and recorded only."""
    notify: NotifyConfig = NotifyConfig()
    """Channels on the site network (e-mail relay, MQTT siren, LAN webhook) for local alarms
    while the cloud is unreachable (``edge.notify``)."""


class RemoteConfigSettings(_Section):
    """Take the sources, doors and local alarm limits from the cloud (``edge.remote_config``).

    The cloud's sections replace ``opcua``, ``mqtt``, ``llrp``, ``doors`` and
    ``alarms.sensors`` of this file; everything else (outbox, health, the cloud link itself)
    stays local. Without this section the file alone configures the agent.
    """

    poll_interval: PositiveDelta = timedelta(seconds=30)
    """How often the agent asks whether its configuration changed (a 304 when it did not)."""
    cache_path: Path = Path("/data/coldtrace/gateway-config.json")
    """The last configuration applied, for a start while the cloud cannot be reached."""
    start_timeout: PositiveDelta = timedelta(seconds=10)
    """At start, how long to wait for the cloud before starting on the cached configuration."""


class DoorGuardSettings(_Section):
    """The outbound doors' local alarm (``edge.door_feed``, ``edge.door_guard``).

    The agent fetches its site's door list (``GET /v1/sites/{site_id}/door-list``, the gateway
    token) while it has doors, keeps the last one on disk for a start without the cloud, and
    judges each outbound passage against it the moment it closes.
    """

    site_id: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[!-~]+$")]
    """The site this gateway's doors belong to (the cloud answers for the gateway's own only)."""
    poll_interval: PositiveDelta = timedelta(seconds=30)
    """How often the door list is asked for (a 304 when it did not change)."""
    cache_path: Path = Path("/data/coldtrace/door-list.json")
    """The last door list received, for a start while the cloud cannot be reached."""


class EdgeConfig(BaseSettings):
    """The whole agent. See docs/edge-agent.md for an example file."""

    model_config = SettingsConfigDict(
        env_prefix="COLDTRACE_EDGE_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    gateway_id: DeviceId
    cloud: CloudConfig
    outbox: OutboxConfig = OutboxConfig()
    health: HealthConfig = HealthConfig()
    clock: ClockConfig = ClockConfig()
    supervision: SupervisionConfig = SupervisionConfig()
    alarms: AlarmsConfig = AlarmsConfig()
    llrp: tuple[LlrpReaderConfig, ...] = ()
    """RFID readers (dock doors); each runs as one source."""
    doors: tuple[DoorConfig, ...] = ()
    """Dock doors: a reader's antennas on each side; passages are derived at the gateway."""
    mqtt: tuple[MqttSourceConfig, ...] = ()
    """MQTT brokers with the topics of temperature loggers and their payload decoders."""
    opcua: tuple[OpcUaEndpointConfig, ...] = ()
    """OPC-UA servers and their NodeIds mapped to sensor ids."""
    remote_config: RemoteConfigSettings | None = None
    """When set, the sources, doors and alarm limits come from the cloud (see above)."""
    door_guard: DoorGuardSettings | None = None
    """When set, outbound passages are judged against the site's door list (see above)."""

    @model_validator(mode="after")
    def _consistent(self) -> EdgeConfig:
        _unique("llrp", [r.reader_id for r in self.llrp])
        _unique("mqtt", [m.name for m in self.mqtt])
        _unique("opcua", [o.name for o in self.opcua])
        sensors = [sensor for o in self.opcua for sensor in o.nodes.values()]
        _unique("opcua sensor ids", sensors)
        _unique("doors", [d.door_id for d in self.doors])
        batch = self.cloud.max_batch_bytes
        if 0 < self.outbox.reserve_bytes < 2 * batch:
            raise ValueError(
                f"outbox.reserve_bytes: {self.outbox.reserve_bytes} is too small to delete one "
                f"acknowledged batch on a full disk; give at least 2 x cloud.max_batch_bytes "
                f"({2 * batch}), or 0 for no reserve"
            )
        readers = {r.reader_id: r for r in self.llrp}
        for i, door in enumerate(self.doors):
            reader = readers.get(door.reader_id)
            if reader is None:
                raise ValueError(
                    f"doors.{i}.reader_id: door {door.door_id!r} uses reader "
                    f"{door.reader_id!r}, which is not in llrp"
                )
            missing = set(door.outside_antennas + door.inside_antennas) - set(reader.antennas)
            if missing:
                raise ValueError(
                    f"doors.{i}: door {door.door_id!r} uses antennas {sorted(missing)} that "
                    f"reader {reader.reader_id!r} does not enable (antennas: "
                    f"{list(reader.antennas)})"
                )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        path = _YAML_FILE.get()
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if path is not None:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=path))
        return tuple(sources)


def _unique(section: str, names: list[str]) -> None:
    seen = {n for n in names if names.count(n) > 1}
    if seen:
        raise ValueError(f"{section}: must be unique, repeated: {sorted(seen)}")


def load_config(path: Path) -> EdgeConfig:
    """Reads and validates ``path`` (plus the environment); raises ``ConfigError`` naming fields."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"cannot read config {path}: {err.strerror}") from err
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {err}") from err
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of settings at the top level")
    token = _YAML_FILE.set(path)
    try:
        return EdgeConfig()  # fields come from the YAML file and the environment
    except ValidationError as err:
        raise ConfigError(describe(err, path)) from err
    finally:
        _YAML_FILE.reset(token)


def describe(err: ValidationError, path: Path) -> str:
    """One line per problem, each starting with the dotted field name."""
    lines = [f"invalid edge config {path}:"]
    for item in err.errors(include_url=False, include_input=False):
        field = ".".join(str(part) for part in item["loc"])
        if field:
            lines.append(f"  {field}: {item['msg']}")
        else:  # a rule across sections: its message starts with the field it concerns
            lines.append(f"  {item['msg'].removeprefix('Value error, ')}")
    return "\n".join(lines)
