"""Local alarms: the gateway warns on its own when the cloud cannot.

The agent shows every tuple a source yields to :meth:`LocalAlarms.observe` *before* committing
it, so the watch never waits on the outbox (a full outbox is an alarm of its own). While the
cloud is behind on a sensor by ``cloud_unreachable_after`` or more (``edge.lag``: the age of the
oldest unacknowledged record, or of the sensor's freshest acknowledged reading, on the monotonic
clock), a sensor whose readings stay outside its unit's limits for longer than ``on_delay``
raises a local alarm: a log line, a retained message on the MQTT alarm topic of the site's
broker, and a ``DeviceStatus`` record in the outbox (so the cloud later learns what the gateway
saw). The alarm clears once the sensor is back inside its limits by ``hysteresis``. The same
sink carries the gateway's own alarms (outbox full or above high water, refused batches, failed
sources, clock jumps).

The on-delay runs on the readings' device time, like the cloud's excursion rules, and on the
monotonic clock for readings timed by receipt (``time == received_at``: the gateway's wall
clock may be stepped). Readings the cloud would not judge are not judged here either: a
reading of quality ``bad`` (even with a value), a reading stamped more than
``MAX_CLOCK_AHEAD`` after its receipt (``protocols.records.clock_ahead``), and a device-timed
reading older than the sensor's latest judged one (a redelivery or a backlog out of order
cannot reset a breach).

Status records are handed to the outbox by :meth:`LocalAlarms.run`, never by the caller, so an
alarm raised by the uplink cannot wait on an outbox that only the uplink can empty. The pending
records are bounded with the policy *coalesce per alarm key*: a key holds at most its latest
state until it is committed, and the number of keys is fixed by the configuration.

Exception tree::

    AlarmError
    └── AlarmPublishError   the MQTT broker refused or could not take the message
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Protocol
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, model_validator

from edge.clock import Clock
from protocols.records import DeviceState, DeviceStatus, Quality, Reading, Record, clock_ahead

log = logging.getLogger(__name__)

NonNegativeDelta = Annotated[timedelta, Field(ge=timedelta(0))]


class AlarmError(RuntimeError):
    """A local alarm could not be delivered everywhere it should go."""


class AlarmPublishError(AlarmError):
    """The MQTT broker refused or could not queue an alarm message."""


class SensorLimits(BaseModel):
    """The unit limits a sensor is judged against locally (°C for temperatures)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    low: float | None = None
    high: float | None = None
    on_delay: NonNegativeDelta | None = None
    """Overrides the alarm config's default on-delay for this sensor."""

    @model_validator(mode="after")
    def _ordered(self) -> SensorLimits:
        if self.low is None and self.high is None:
            raise ValueError("give at least one of low and high")
        if self.low is not None and self.high is not None and self.low >= self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        return self


class LocalAlarmConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    cloud_unreachable_after: NonNegativeDelta = timedelta(minutes=5)
    """Local alarms are armed while the cloud is at least this far behind (see ``edge.lag``)."""
    on_delay: NonNegativeDelta = timedelta(minutes=10)
    hysteresis: Annotated[float, Field(ge=0)] = 0.5
    topic_prefix: Annotated[str, Field(min_length=1, pattern=r"^[^#+]+$")] = "coldtrace/alarms"
    sensors: dict[str, SensorLimits] = Field(default_factory=dict)


class AlarmSink(Protocol):
    """Where alarms go; ``key`` names the alarm so raising twice reports once."""

    async def raise_alarm(self, key: str, message: str) -> None: ...

    async def clear_alarm(self, key: str, message: str) -> None: ...


class NoAlarms:
    """Alarms that are only logged (for tools and tests that run an uplink alone)."""

    async def raise_alarm(self, key: str, message: str) -> None:
        log.error("alarm %s: %s", key, message)

    async def clear_alarm(self, key: str, message: str) -> None:
        log.info("alarm %s cleared: %s", key, message)


class AlarmPublisher(Protocol):
    def publish(self, topic: str, payload: bytes) -> None:
        """Queues a retained QoS 1 message; raises ``AlarmPublishError`` when it cannot."""
        ...


@dataclass
class _SensorState:
    breach_since: datetime | None = None
    """Device time of the first reading of the current breach."""
    breach_mono: float | None = None
    """Monotonic time the first reading of the current breach was seen."""
    latest: datetime | None = None
    """Device time of the latest device-timed reading judged."""
    active: bool = False


def topic_for(prefix: str, gateway_id: str, key: str) -> str:
    """The alarm topic of ``key``; MQTT wildcards in ids are percent-encoded.

    >>> topic_for("coldtrace/alarms", "gw-1", "sensor/fridge+1/t")
    'coldtrace/alarms/gw-1/sensor/fridge%2B1/t'
    """
    return f"{prefix}/{quote(gateway_id, safe='')}/{quote(key, safe='/')}"


class LocalAlarms:
    """The alarm sink and the local limit watch; ``observe`` is fed every tuple before commit.

    ``cloud_behind(sensor_id)`` says how far behind the cloud is on that sensor
    (``edge.lag.CloudLag.behind``).
    """

    def __init__(
        self,
        gateway_id: str,
        config: LocalAlarmConfig,
        clock: Clock,
        cloud_behind: Callable[[str], timedelta],
        publisher: AlarmPublisher | None = None,
        *,
        listener: Callable[[str, str, bool, datetime], None] | None = None,
    ) -> None:
        self._gateway_id = gateway_id
        self._config = config
        self._clock = clock
        self._cloud_behind = cloud_behind
        self._publisher = publisher
        self._listener = listener
        """Told of every raise and clear (``edge.notify.LocalNotifier.on_signal``)."""
        self._sensors: dict[str, _SensorState] = {}
        self._active: dict[str, str] = {}
        self._pending: dict[str, DeviceStatus] = {}
        self._wake = asyncio.Event()
        self.publish_errors = 0

    @property
    def active(self) -> dict[str, str]:
        """Raised alarms by key, with their message."""
        return dict(self._active)

    async def raise_alarm(self, key: str, message: str) -> None:
        self._signal(key, message, raised=True, device=self._gateway_id, at=self._clock.now())

    async def clear_alarm(self, key: str, message: str) -> None:
        self._signal(key, message, raised=False, device=self._gateway_id, at=self._clock.now())

    def reconfigure(self, config: LocalAlarmConfig) -> None:
        """Takes new limits (a configuration from the cloud); a sensor no longer watched
        forgets its breach, and its raised alarm is cleared rather than left standing."""
        for sensor_id in set(self._sensors) - set(config.sensors):
            state = self._sensors.pop(sensor_id)
            if state.active:
                message = f"{sensor_id} is no longer watched locally (configuration changed)"
                at = self._clock.now()
                self._signal(f"sensor/{sensor_id}", message, raised=False, device=sensor_id, at=at)
        self._config = config

    def observe(self, records: tuple[Record, ...]) -> None:
        """Judges the readings of a tuple against their sensors' limits (before its commit)."""
        for record in records:
            if isinstance(record, Reading) and record.sensor_id in self._config.sensors:
                self._judge(record, self._config.sensors[record.sensor_id])

    def _judge(self, reading: Reading, limits: SensorLimits) -> None:
        if reading.value is None or reading.quality is Quality.BAD:
            # A bad reading (even one carrying a value) says nothing about the temperature,
            # as in the cloud's cold-chain step: it neither starts nor ends a breach.
            return
        if clock_ahead(reading.time, reading.received_at):
            return  # a probe clock in the future: stored, not judged (as in the cloud)
        state = self._sensors.setdefault(reading.sensor_id, _SensorState())
        by_receipt = reading.time == reading.received_at
        if not by_receipt:
            if state.latest is not None and reading.time <= state.latest:
                return  # redelivered or out of order: it cannot reset or extend a breach
            state.latest = reading.time
        value, hyst = reading.value, self._config.hysteresis
        high = limits.high is not None and value > limits.high
        low = limits.low is not None and value < limits.low
        key = f"sensor/{reading.sensor_id}"
        if high or low:
            now = self._clock.monotonic()
            if state.breach_since is None or state.breach_mono is None:
                state.breach_since, state.breach_mono = reading.time, now
            delay = limits.on_delay if limits.on_delay is not None else self._config.on_delay
            if by_receipt:  # the wall clock may be stepped; monotonic time is not
                held = timedelta(seconds=now - state.breach_mono)
            else:
                held = reading.time - state.breach_since
            behind = self._cloud_behind(reading.sensor_id)
            offline = behind >= self._config.cloud_unreachable_after
            if not state.active and held >= delay and offline:
                state.active = True
                side = f"above {limits.high}" if high else f"below {limits.low}"
                message = (
                    f"{reading.sensor_id} reads {value} {reading.unit}, {side} since "
                    f"{state.breach_since.isoformat()}, while the cloud is "
                    f"{behind.total_seconds():.0f} s behind"
                )
                self._signal(key, message, raised=True, device=reading.sensor_id, at=reading.time)
            return
        state.breach_since = state.breach_mono = None
        inside = (limits.high is None or value <= limits.high - hyst) and (
            limits.low is None or value >= limits.low + hyst
        )
        if state.active and inside:
            state.active = False
            message = f"{reading.sensor_id} back within limits at {value} {reading.unit}"
            self._signal(key, message, raised=False, device=reading.sensor_id, at=reading.time)

    def _signal(self, key: str, message: str, *, raised: bool, device: str, at: datetime) -> None:
        if raised == (key in self._active):
            if raised:
                self._active[key] = message  # kept current, not reported again
            return
        if raised:
            log.warning("LOCAL ALARM %s: %s", key, message)
            self._active[key] = message
        else:
            log.warning("local alarm cleared %s: %s", key, message)
            self._active.pop(key, None)
        self._publish(key, message, raised, at)
        if self._listener is not None:
            self._listener(key, message, raised, at)
        self._pending[key] = DeviceStatus(
            device_id=device,
            device_type="gateway" if device == self._gateway_id else "sensor",
            state=DeviceState.DEGRADED if raised else DeviceState.ONLINE,
            detail=(f"local alarm {key}: " if raised else f"local alarm {key} cleared: ")
            + message[:1900],
            time=at,
        )
        self._wake.set()

    def _publish(self, key: str, message: str, raised: bool, at: datetime) -> None:
        if self._publisher is None:
            return
        payload = {
            "gateway_id": self._gateway_id,
            "alarm": key,
            "state": "raised" if raised else "cleared",
            "message": message,
            "time": at.isoformat(),
        }
        topic = topic_for(self._config.topic_prefix, self._gateway_id, key)
        try:
            self._publisher.publish(topic, json.dumps(payload).encode())
        except AlarmPublishError as err:
            # The log line and the outbox record still carry the alarm.
            self.publish_errors += 1
            log.warning("alarm %s not published on MQTT: %s", key, err)

    async def run(self, emit: Callable[[tuple[Record, ...]], Awaitable[object]]) -> None:
        """Commits pending status records through ``emit`` (the outbox) until cancelled."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                key = next(iter(self._pending))
                await emit((self._pending.pop(key),))


class MqttBrokerConfig(BaseModel):
    """The site broker that alarm panels (and building management) subscribe to."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 1883
    username: str | None = None
    password: str | None = None
    client_id: str | None = None
    keepalive: Annotated[int, Field(ge=5)] = 30
    max_queued: Annotated[int, Field(ge=1)] = 1000
    """Alarms queued while the broker is away; beyond this, publishing fails (and is logged)."""


class MqttAlarmPublisher:
    """paho-mqtt behind ``AlarmPublisher``: connects in the background, reconnects by itself.

    ``async with`` starts paho's network thread and stops and joins it on exit.
    """

    def __init__(self, config: MqttBrokerConfig) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self._mqtt = mqtt
        self._config = config
        self._client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=config.client_id or "",
            protocol=mqtt.MQTTv311,
        )
        self._client.max_queued_messages_set(config.max_queued)
        if config.username is not None:
            self._client.username_pw_set(config.username, config.password)

    async def __aenter__(self) -> MqttAlarmPublisher:
        self._client.connect_async(self._config.host, self._config.port, self._config.keepalive)
        self._client.loop_start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._client.disconnect()
        await asyncio.to_thread(self._client.loop_stop)

    def publish(self, topic: str, payload: bytes) -> None:
        info = self._client.publish(topic, payload, qos=1, retain=True)
        if info.rc == self._mqtt.MQTT_ERR_NO_CONN:
            log.info("alarm queued until the broker is reachable: %s", topic)
        elif info.rc != self._mqtt.MQTT_ERR_SUCCESS:
            raise AlarmPublishError(
                f"publish to {topic} failed: {self._mqtt.error_string(info.rc)}"
            )
