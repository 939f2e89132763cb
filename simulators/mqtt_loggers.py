"""Temperature loggers publishing to an MQTT broker in the shapes real devices use.

Four shapes (the documentation each follows is cited in docs/simulators-temperature.md):

- ``plain``: ``coldtrace/<site>/<sensor_id>/reading`` with
  ``{"sensor_id": …, "time": "<RFC 3339 UTC>", "value": 4.3, "unit": "degC"}``, plus
  ``"quality": "bad"`` and a null value when the probe has failed, ``"uncertain"`` when it is
  out of its measuring range.
- ``chirpstack``: a ChirpStack v4 uplink event on
  ``application/<application_id>/device/<dev_eui>/event/up``: a Milesight EM300-TH frame (fPort 85,
  channels battery ``01 75``, temperature ``03 67`` int16 LE 0.1 °C, humidity ``04 68`` 0.5 %RH)
  base64 in ``data`` and decoded by the device-profile codec in ``object``; ``time`` is the time
  the network server received it.
- ``tasmota``: ``tele/<device>/SENSOR`` with ``{"Time": "<local time, no offset>", "DS18B20":
  {"Id": …, "Temperature": …}, "TempUnit": "C"}``.
- ``shelly``: ``<device_id>/status/temperature:0`` with ``{"id": 0, "tC": …, "tF": …}`` and no
  time at all.

Every logger has its own MQTT connection (client id ``<shape>-<device_id>``, MQTT 3.1.1, QoS 1),
its own clock offset, time zone and publish interval, and follows its device's habits when the
broker is away: ``plain`` and ``chirpstack`` keep readings in a bounded backlog (overflow policy:
*drop oldest*, as a logger's ring memory does, counted in ``dropped``) and publish it in order
after reconnecting; Tasmota and Shelly publish only while connected (``skipped_offline``). A
message handed to the client stays with paho until the broker's PUBACK and is resent after a
reconnect (at-least-once, as with real devices).

``MqttLoggerFleet`` is an async context manager; ``step()`` advances the site to the clock and
publishes every reading due, in time order (the background task calls it every ``tick``);
``publish_malformed(unit_id, kind)`` sends a broken payload on a logger's own topic.

Exception tree::

    MqttSimulatorError
    └── MalformedKindError   the malformation does not apply to that logger's shape
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import heapq
import json
import sys
import threading
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from types import TracebackType
from typing import Annotated, Any, Self
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from pydantic import BaseModel, ConfigDict, Field, field_validator

from simulators.site import (
    Clock,
    MqttLogger,
    Shape,
    SiteRuntime,
    run_for,
    runtime_from_args,
)
from simulators.thermal import SensorSample, SensorStatus


class MqttSimulatorError(RuntimeError):
    """The MQTT loggers cannot do what was asked."""


class MalformedKindError(MqttSimulatorError, ValueError):
    """That kind of malformed payload does not exist for that shape."""


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    payload: bytes


# --- payload shapes (pure) ---------------------------------------------------------------------


def rfc3339(when: datetime) -> str:
    """UTC, milliseconds, ``Z``: ``2026-11-25T08:15:00.000Z``."""
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def plain_message(
    site_id: str,
    sensor_id: str,
    time: datetime,
    value: float | None,
    status: SensorStatus = SensorStatus.GOOD,
) -> Message:
    """Our own shape; ``quality`` is written only when it is not ``good``."""
    body: dict[str, Any] = {
        "sensor_id": sensor_id,
        "time": rfc3339(time),
        "value": value,
        "unit": "degC",
    }
    if value is None or status is not SensorStatus.GOOD:
        body["quality"] = "bad" if value is None else status.value
    return Message(f"coldtrace/{site_id}/{sensor_id}/reading", _json(body))


def milesight_em300_th(temperature: float, humidity: float, battery: int) -> bytes:
    """An EM300-TH uplink frame: ``01 75`` battery %, ``03 67`` int16 LE 0.1 °C, ``04 68`` 0.5 %RH.

    >>> milesight_em300_th(30.8, 50.5, 92).hex(" ")
    '01 75 5c 03 67 34 01 04 68 65'
    """
    raw_t = round(temperature * 10)
    return (
        bytes([0x01, 0x75, battery])
        + bytes([0x03, 0x67])
        + raw_t.to_bytes(2, "little", signed=True)
        + bytes([0x04, 0x68, round(humidity * 2)])
    )


@dataclass
class ChirpStackDevice:
    """What ChirpStack knows of one device, and the counters that change with each uplink."""

    dev_eui: str
    application_id: str
    device_name: str
    f_cnt: int = 0
    tenant_id: str = "52f14cd4-c6f1-4fbd-8f87-4025e1d49242"
    device_profile_id: str = "0a3a7d5e-2f4c-4e39-8d8e-3c1e7f6b9a21"
    gateway_id: str = "0016c001f153a14c"


def chirpstack_uplink(
    device: ChirpStackDevice, time: datetime, frame: bytes, decoded: dict[str, Any], rng_bits: int
) -> Message:
    """A ChirpStack v4 ``up`` event (JSON marshaler) for one uplink of ``device``."""
    dedup = uuid.UUID(int=rng_bits & ((1 << 128) - 1), version=4)
    stamp = time.astimezone(UTC).isoformat(timespec="microseconds")
    event = {
        "deduplicationId": str(dedup),
        "time": stamp,
        "deviceInfo": {
            "tenantId": device.tenant_id,
            "tenantName": "coldtrace",
            "applicationId": device.application_id,
            "applicationName": "cold-chain",
            "deviceProfileId": device.device_profile_id,
            "deviceProfileName": "Milesight EM300-TH",
            "deviceName": device.device_name,
            "devEui": device.dev_eui,
            "deviceClassEnabled": "CLASS_A",
            "tags": {},
        },
        "devAddr": device.dev_eui[-8:],
        "adr": True,
        "dr": 5,
        "fCnt": device.f_cnt,
        "fPort": 85,
        "confirmed": False,
        "data": base64.b64encode(frame).decode("ascii"),
        "object": decoded,
        "rxInfo": [
            {
                "gatewayId": device.gateway_id,
                "uplinkId": rng_bits >> 96 & 0xFFFF,
                "nsTime": stamp,
                "rssi": -57,
                "snr": 9.2,
                "channel": 2,
                "location": {},
                "context": "AAAAAA==",
                "metadata": {"region_config_id": "eu868", "region_common_name": "EU868"},
                "crcStatus": "CRC_OK",
            }
        ],
        "txInfo": {
            "frequency": 868_500_000,
            "modulation": {
                "lora": {"bandwidth": 125_000, "spreadingFactor": 7, "codeRate": "CR_4_5"}
            },
        },
    }
    topic = f"application/{device.application_id}/device/{device.dev_eui}/event/up"
    return Message(topic, _json(event))


def tasmota_sensor(device: str, local_time: datetime, probe_id: str, value: float) -> Message:
    """``tele/<device>/SENSOR``; ``local_time`` is written as it reads, without an offset."""
    body = {
        "Time": local_time.strftime("%Y-%m-%dT%H:%M:%S"),
        "DS18B20": {"Id": probe_id, "Temperature": round(value, 1)},
        "TempUnit": "C",
    }
    return Message(f"tele/{device}/SENSOR", _json(body))


def shelly_temperature(device_id: str, sample: SensorSample) -> Message:
    """``<device_id>/status/temperature:0``: the Temperature component's status object."""
    body: dict[str, Any] = {"id": 0}
    if sample.status is SensorStatus.BAD or sample.value is None:
        body |= {"tC": None, "tF": None, "errors": ["read"]}
    else:
        body |= {"tC": sample.value, "tF": round(sample.value * 9 / 5 + 32, 1)}
        if sample.status is SensorStatus.UNCERTAIN:
            body["errors"] = ["out_of_range"]
    return Message(f"{device_id}/status/temperature:0", _json(body))


def topic_of(site_id: str, logger: MqttLogger) -> str:
    """The topic a logger publishes its readings on."""
    if logger.shape is Shape.PLAIN:
        return f"coldtrace/{site_id}/{logger.device_id}/reading"
    if logger.shape is Shape.CHIRPSTACK:
        return f"application/{logger.application_id}/device/{logger.device_id}/event/up"
    if logger.shape is Shape.TASMOTA:
        return f"tele/{logger.device_id}/SENSOR"
    return f"{logger.device_id}/status/temperature:0"


def _json(body: object) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


class Malformed(StrEnum):
    """Broken payloads a logger can be told to publish, on its own topic."""

    NOT_JSON = "not-json"  # bytes that are not even UTF-8
    TRUNCATED = "truncated"  # JSON cut in the middle, as a lost TCP segment would leave it
    WRONG_TYPE = "wrong-type"  # the temperature as a string
    MISSING_VALUE = "missing-value"  # the temperature left out (chirpstack: no data, no object)
    BAD_BASE64 = "bad-base64"  # chirpstack only: ``data`` is not base64, no ``object``
    SHORT_FRAME = "short-frame"  # chirpstack only: the frame ends mid-channel, no ``object``


# --- the loggers --------------------------------------------------------------------------------


class MqttSimConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    broker: str = "mqtt://127.0.0.1:1883"
    tick: Annotated[timedelta, Field(gt=timedelta(0))] = timedelta(milliseconds=200)
    keepalive: Annotated[int, Field(ge=5)] = 30
    reconnect_max_delay: Annotated[int, Field(ge=1)] = 5

    @field_validator("broker")
    @classmethod
    def _mqtt_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme != "mqtt" or not parts.hostname:
            raise ValueError("broker must look like mqtt://host:port")
        return value


@dataclass
class LoggerStats:
    sampled: int = 0
    handed: int = 0
    acked: int = 0
    dropped: int = 0
    skipped_offline: int = 0
    silent: int = 0


@dataclass
class _Logger:
    unit_id: str
    spec: MqttLogger
    site_id: str
    client: mqtt.Client
    next_due: datetime
    stats: LoggerStats = field(default_factory=LoggerStats)
    backlog: deque[Message] = field(default_factory=deque)
    connected: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    inflight: set[int] = field(default_factory=set)
    early_acks: set[int] = field(default_factory=set)
    chirpstack: ChirpStackDevice | None = None


class MqttLoggerFleet:
    """The site's MQTT loggers (see module docstring)."""

    def __init__(self, config: MqttSimConfig, runtime: SiteRuntime, clock: Clock) -> None:
        self.config = config
        self.runtime = runtime
        self._clock = clock
        parts = urlsplit(config.broker)
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 1883
        self._loggers: dict[str, _Logger] = {}
        self._task: asyncio.Task[None] | None = None
        self._rng_state = 0

    @property
    def stats(self) -> dict[str, LoggerStats]:
        return {uid: lg.stats for uid, lg in self._loggers.items()}

    def topics(self) -> dict[str, str]:
        """The topic each unit's logger publishes on."""
        return {
            uid: topic_of(self.runtime.site.site_id, lg.spec) for uid, lg in self._loggers.items()
        }

    def connected(self, unit_id: str) -> bool:
        return self._loggers[unit_id].connected.is_set()

    def pending(self, unit_id: str) -> int:
        """Readings not yet acknowledged by the broker: the backlog plus what paho holds."""
        lg = self._loggers[unit_id]
        with lg.lock:
            return len(lg.backlog) + len(lg.inflight)

    async def __aenter__(self) -> Self:
        start = self.runtime.time
        for unit_id, spec in self.runtime.specs.items():
            logger = spec.logger
            if not isinstance(logger, MqttLogger):
                continue
            lg = _Logger(
                unit_id=unit_id,
                spec=logger,
                site_id=self.runtime.site.site_id,
                client=self._client(logger),
                next_due=start + logger.interval,
            )
            if logger.shape is Shape.CHIRPSTACK:
                lg.chirpstack = ChirpStackDevice(
                    logger.device_id, logger.application_id, device_name=unit_id
                )
            self._wire(lg)
            self._loggers[unit_id] = lg
        self._task = asyncio.create_task(self._run(), name="mqtt-sim-loggers")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for lg in self._loggers.values():
            lg.client.disconnect()
        # loop_stop joins paho's network thread: no thread outlives the fleet.
        await asyncio.gather(
            *(asyncio.to_thread(lg.client.loop_stop) for lg in self._loggers.values())
        )

    # Both waits poll: the flags and counters they watch change on paho's network threads.
    # Callers bound them with asyncio.timeout().

    async def wait_connected(self) -> None:
        """Waits until every logger has a broker session."""
        while not all(lg.connected.is_set() for lg in self._loggers.values()):  # noqa: ASYNC110
            await asyncio.sleep(0.02)

    async def wait_delivered(self) -> None:
        """Waits until every reading taken has been acknowledged by the broker."""
        while any(self.pending(uid) for uid in self._loggers):
            self._flush_all()
            await asyncio.sleep(0.02)

    def step(self) -> int:
        """Advances the site to the clock, takes every reading due in time order, publishes.

        Returns the number of readings taken.
        """
        now = self._clock.now()
        due = [(lg.next_due, uid) for uid, lg in self._loggers.items() if lg.next_due <= now]
        heapq.heapify(due)
        taken = 0
        while due:
            when, uid = heapq.heappop(due)
            lg = self._loggers[uid]
            self.runtime.advance_to(when)
            taken += self._take(lg, when)
            lg.next_due = when + lg.spec.interval
            if lg.next_due <= now:
                heapq.heappush(due, (lg.next_due, uid))
        self.runtime.advance_to(now)
        self._flush_all()
        return taken

    def publish_malformed(self, unit_id: str, kind: Malformed) -> Message:
        """Publishes a broken payload on the logger's own topic (QoS 1) and returns it."""
        lg = self._loggers[unit_id]
        good = self._render(lg, SensorSample(self.runtime.time, 4.2, SensorStatus.GOOD))
        assert good is not None  # a good sample always renders
        message = Message(good.topic, corrupt(lg.spec.shape, good.payload, kind))
        lg.backlog.append(message)
        self._flush(lg)
        return message

    # -- internals --

    def _client(self, logger: MqttLogger) -> mqtt.Client:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"{logger.shape.value}-{logger.device_id}",
            protocol=mqtt.MQTTv311,
            clean_session=True,
        )
        client.reconnect_delay_set(1, self.config.reconnect_max_delay)
        return client

    def _wire(self, lg: _Logger) -> None:
        def on_connect(
            client: mqtt.Client, userdata: object, flags: object, rc: Any, props: object
        ) -> None:
            if not rc.is_failure:
                lg.connected.set()

        def on_disconnect(
            client: mqtt.Client, userdata: object, flags: object, rc: object, props: object
        ) -> None:
            lg.connected.clear()

        def on_publish(
            client: mqtt.Client, userdata: object, mid: int, rc: object, props: object
        ) -> None:
            with lg.lock:
                if mid in lg.inflight:
                    lg.inflight.discard(mid)
                    lg.stats.acked += 1
                else:
                    lg.early_acks.add(mid)

        lg.client.on_connect = on_connect
        lg.client.on_disconnect = on_disconnect
        lg.client.on_publish = on_publish
        lg.client.connect_async(self._host, self._port, keepalive=self.config.keepalive)
        lg.client.loop_start()

    async def _run(self) -> None:
        interval = self.config.tick.total_seconds()
        while True:
            self.step()
            await asyncio.sleep(interval)

    def _take(self, lg: _Logger, when: datetime) -> int:
        sample = self.runtime.models[lg.unit_id].read_sensor()
        if sample is None:
            lg.stats.silent += 1
            return 0
        lg.stats.sampled += 1
        message = self._render(lg, sample)
        if message is None:
            return 1
        if not lg.spec.buffers and not lg.connected.is_set():
            lg.stats.skipped_offline += 1
            return 1
        if len(lg.backlog) >= lg.spec.backlog_limit:
            lg.backlog.popleft()
            lg.stats.dropped += 1
        lg.backlog.append(message)
        return 1

    def _render(self, lg: _Logger, sample: SensorSample) -> Message | None:
        spec = lg.spec
        device_time = sample.time + spec.clock_offset
        failed = sample.status is SensorStatus.BAD or sample.value is None
        if spec.shape is Shape.PLAIN:
            return plain_message(
                lg.site_id, spec.device_id, device_time, sample.value, sample.status
            )
        if spec.shape is Shape.SHELLY:
            return shelly_temperature(spec.device_id, sample)
        if failed or sample.value is None:
            return None  # EM300-TH and Tasmota send nothing for a probe they cannot read
        if spec.shape is Shape.TASMOTA:
            local = device_time.astimezone(ZoneInfo(spec.timezone))
            return tasmota_sensor(spec.device_id, local, spec.probe_id, sample.value)
        assert lg.chirpstack is not None
        lg.chirpstack.f_cnt += 1
        humidity = 45.0 + (lg.chirpstack.f_cnt % 7) * 0.5
        frame = milesight_em300_th(sample.value, humidity, 92)
        decoded = {"battery": 92, "temperature": sample.value, "humidity": humidity}
        return chirpstack_uplink(lg.chirpstack, device_time, frame, decoded, self._bits(lg))

    def _bits(self, lg: _Logger) -> int:
        # Deterministic ids: a simulator run is reproducible end to end.
        self._rng_state += 1
        key = f"{lg.unit_id}/{self._rng_state}".encode()
        return int.from_bytes(uuid.uuid5(uuid.NAMESPACE_URL, key.decode()).bytes, "big")

    def _flush_all(self) -> None:
        for lg in self._loggers.values():
            self._flush(lg)

    def _flush(self, lg: _Logger) -> None:
        while lg.backlog and lg.connected.is_set():
            message = lg.backlog.popleft()
            info = lg.client.publish(message.topic, message.payload, qos=1)
            if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
                lg.backlog.appendleft(message)  # paho refused it: keep it for the next try
                return
            lg.stats.handed += 1
            with lg.lock:
                if info.mid in lg.early_acks:
                    lg.early_acks.discard(info.mid)
                    lg.stats.acked += 1
                else:
                    lg.inflight.add(info.mid)


def corrupt(shape: Shape, payload: bytes, kind: Malformed) -> bytes:
    """``payload`` (a good message of ``shape``) broken as ``kind`` says."""
    if kind is Malformed.NOT_JSON:
        return b"\xff\xfe\x00garbage\x80"
    if kind is Malformed.TRUNCATED:
        return payload[: len(payload) // 2]
    body = json.loads(payload)
    if kind in (Malformed.BAD_BASE64, Malformed.SHORT_FRAME):
        if shape is not Shape.CHIRPSTACK:
            raise MalformedKindError(f"{kind.value} applies to chirpstack loggers only")
        # Without a codec ``object``, as from a device profile that has none: the frame alone.
        body.pop("object", None)
        if kind is Malformed.BAD_BASE64:
            body["data"] = "%%not base64%%"
        else:
            frame = base64.b64decode(body["data"])
            body["data"] = base64.b64encode(frame[:5]).decode("ascii")
        return _json(body)
    if shape is Shape.CHIRPSTACK and kind is Malformed.MISSING_VALUE:
        body.pop("object", None)  # an uplink with no application payload at all
        body.pop("data", None)
        return _json(body)
    holder, key = _value_slot(shape, body)
    if kind is Malformed.WRONG_TYPE:
        holder[key] = "warm"
    else:
        del holder[key]
    return _json(body)


def _value_slot(shape: Shape, body: dict[str, Any]) -> tuple[dict[str, Any], str]:
    if shape is Shape.PLAIN:
        return body, "value"
    if shape is Shape.SHELLY:
        return body, "tC"
    if shape is Shape.TASMOTA:
        return body["DS18B20"], "Temperature"
    return body["object"], "temperature"


def run_from_args(args: argparse.Namespace) -> int:
    """``coldtrace sim mqtt``: publishes until Ctrl-C or ``--duration``; prints the topics."""
    runtime, clock = runtime_from_args(args, "mqtt")
    fleet = MqttLoggerFleet(MqttSimConfig(broker=args.broker), runtime, clock)

    async def main() -> None:
        async with fleet:
            print(json.dumps({"broker": args.broker, "topics": fleet.topics()}), flush=True)
            await run_for(args.duration)
            fleet.step()
            async with asyncio.timeout(5):
                await fleet.wait_delivered()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        return 0
    except TimeoutError:
        print("readings not acknowledged by the broker were left unsent", file=sys.stderr)
        return 1
    return 0
