"""OPC-UA source: data-change subscriptions on a server's temperature variables.

asyncua stays inside this module. For each connection a new ``Client`` is made, connected
(optionally with Basic256Sha256 Sign or SignAndEncrypt and a client certificate), and one
subscription monitors every configured node with the configured sampling and publishing
intervals. Notifications become ``Reading`` records:

* quality from the StatusCode's severity bits (OPC-UA Part 4 §7.39: top two bits 00 Good,
  01 Uncertain, 1x Bad); a Bad value, or a value that is not a finite number, gives a ``bad``
  reading without a value;
* the value in °C: each variable's EngineeringUnits is read on connect (°C as is, °F and K
  converted, no property taken as °C; another unit is not monitored and reported);
* time is the SourceTimestamp. When the server sends none, the ServerTimestamp is used (the
  server's time of receipt from the device, as close as the server can tell); when it sends
  neither, the gateway's receipt time is used and the reading is marked ``uncertain``, never
  silently.

Reconnection does not rely on asyncua's own reconnect, which is known to hang when a dead
connection is reused (FreeOpcUa/opcua-asyncio#1660: "the application would sometimes end up
hanging ad infinitum when trying to connect the same Client instance again"; the fix reported
there is re-creating the client). Here every failure discards the client (its disconnect bounded
by the request timeout), waits a jittered exponential backoff and builds a new one, which
re-subscribes. A silence watchdog reconnects when neither a notification nor a keep-alive
arrived for ``watchdog``; the server is asked for a keep-alive every ``publishing_interval x
keepalive_count``, which the configuration checks is well below the watchdog. The first value of
each node after a reconnect repeats the last one seen when its timestamp, status and value are
unchanged; it is not yielded twice.

Overflow: the subscription's hand-off queue is bounded (``handoff_size``); if the consumer falls
so far behind that it fills, the connection is dropped and re-established (named policy
"disconnect"); the ``offline`` status of that moment says values may have been missed, since
OPC-UA data change subscriptions cannot be paused without the server discarding values. Server
connection state leaves as ``DeviceStatus`` records (``opcua_server``).

Exception tree (from ``edge.sources.base``)::

    SourceError
    ├── TransientSourceError    not raised: connection problems are retried here
    └── PermanentSourceError    certificate or key unreadable, security or identity rejected
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

from asyncua import ua
from asyncua.client.client import Client
from asyncua.common.subscription import DataChangeEvent, OverflowPolicy, StatusChangeEvent
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256
from asyncua.ua.attribute_ids import AttributeIds
from asyncua.ua.uaerrors import UaError, UaStatusCodeError
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from edge.backoff import backoff_delay
from edge.sources.base import PermanentSourceError
from protocols.records import DeadLetter, DeviceId, DeviceState, DeviceStatus, Quality, Reading
from protocols.records import Record as AnyRecord

_log = logging.getLogger(__name__)

_NO_TIME_BEFORE = datetime(1601, 1, 2, tzinfo=UTC)  # OPC-UA's "no timestamp" is 1601-01-01
_PERMANENT_WORDS = ("Certificate", "Security", "Identity", "UserAccessDenied", "Nonce")
_TRANSIENT = (OSError, TimeoutError, ConnectionError, UaError, asyncio.TimeoutError)


class OpcUaSecurity(BaseModel):
    """Basic256Sha256 with a client application instance certificate."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mode: Literal["Sign", "SignAndEncrypt"]
    certificate: Path = Field(description="client certificate, PEM or DER")
    private_key: Path = Field(description="its private key, PEM")
    server_certificate: Path | None = Field(
        default=None, description="pin the server's certificate; None: take it from the endpoint"
    )
    application_uri: str = Field(
        default="urn:coldtrace:edge", description="must equal the URI in the certificate's SAN"
    )


class OpcUaEndpointConfig(BaseModel):
    """One OPC-UA server and the nodes read from it (``nodes``: NodeId -> sensor id)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: DeviceId = Field(description="device id of the server in statuses")
    endpoint: str
    security: OpcUaSecurity | None = None
    username: str | None = None
    password: SecretStr | None = None
    nodes: dict[str, DeviceId] = Field(
        min_length=1, description="'ns=2;s=x' or 'nsu=<namespace uri>;s=x' -> sensor id"
    )
    sampling_interval: timedelta = timedelta(seconds=1)
    publishing_interval: timedelta = timedelta(seconds=1)
    keepalive_count: int = Field(default=5, ge=1, le=1000)
    queue_size: int = Field(default=10, ge=1, le=10_000, description="server-side, per node")
    handoff_size: int = Field(default=1000, ge=1, le=1_000_000)
    watchdog: timedelta = timedelta(seconds=30)
    request_timeout: timedelta = timedelta(seconds=5)
    session_timeout: timedelta = timedelta(minutes=2)
    backoff_initial: timedelta = timedelta(milliseconds=500)
    backoff_max: timedelta = timedelta(seconds=30)

    @field_validator("endpoint")
    @classmethod
    def _opc_tcp(cls, value: str) -> str:
        if not value.startswith("opc.tcp://"):
            raise ValueError("endpoint must be an opc.tcp:// URL")
        return value

    @field_validator("nodes")
    @classmethod
    def _node_ids(cls, value: dict[str, str]) -> dict[str, str]:
        for text in value:
            _parse_node_id(text, {})
        return value

    @model_validator(mode="after")
    def _timing(self) -> OpcUaEndpointConfig:
        for name in ("publishing_interval", "request_timeout", "backoff_initial", "watchdog"):
            if getattr(self, name) <= timedelta(0):
                raise ValueError(f"{name} must be positive")
        if self.sampling_interval < timedelta(0):
            raise ValueError("sampling_interval must not be negative")
        keepalive = self.publishing_interval * self.keepalive_count
        if self.watchdog < 2 * keepalive:
            raise ValueError(
                f"watchdog ({self.watchdog}) must be at least twice the keep-alive period "
                f"publishing_interval x keepalive_count ({keepalive})"
            )
        if self.backoff_max < self.backoff_initial:
            raise ValueError("backoff_max must not be below backoff_initial")
        return self


class _SessionLost(Exception):  # noqa: N818 - internal signal, never leaves the module
    """The current connection is unusable; the reason goes into the offline status."""


def _parse_node_id(text: str, namespaces: dict[str, int]) -> ua.NodeId:
    """A NodeId from 'ns=..;' or 'nsu=<uri>;' text; uri looked up in ``namespaces``."""
    if text.startswith("nsu="):
        uri, sep, rest = text[4:].partition(";")
        if not sep or not uri or not rest:
            raise ValueError(f"invalid NodeId {text!r}: expected nsu=<uri>;<identifier>")
        if not namespaces:
            return ua.NodeId.from_string(rest)  # syntax check only
        if uri not in namespaces:
            raise _SessionLost(f"the server has no namespace {uri!r} (for {text})")
        text = f"ns={namespaces[uri]};{rest}"
    try:
        return ua.NodeId.from_string(text)
    except (ValueError, UaError, IndexError) as err:
        raise ValueError(f"invalid NodeId {text!r}: {err}") from err


def quality_of(status: ua.StatusCode | None) -> Quality:
    """Quality from an OPC-UA StatusCode's severity bits.

    >>> quality_of(ua.StatusCode(0x00000000)).value
    'good'
    >>> quality_of(ua.StatusCode(0x40910000)).value  # UncertainEngineeringUnitsExceeded
    'uncertain'
    >>> quality_of(ua.StatusCode(0x808C0000)).value  # BadSensorFailure
    'bad'
    """
    code = 0 if status is None else int(status.value)
    severity = code >> 30
    if severity == 0:
        return Quality.GOOD
    if severity == 1:
        return Quality.UNCERTAIN
    return Quality.BAD


def _stamp(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return None if aware < _NO_TIME_BEFORE else aware.astimezone(UTC)


# UNECE Recommendation 20 codes, as OPC-UA Part 8 encodes them in EUInformation.UnitId.
_CELSIUS = int.from_bytes(b"CEL", "big")
_TO_CELSIUS: dict[int, Callable[[float], float]] = {
    _CELSIUS: lambda v: v,
    int.from_bytes(b"FAH", "big"): lambda v: round((v - 32.0) * 5.0 / 9.0, 9),
    int.from_bytes(b"KEL", "big"): lambda v: round(v - 273.15, 9),
}


def reading_of(
    sensor_id: str, data: ua.DataValue, received_at: datetime, unit_id: int = _CELSIUS
) -> Reading | DeadLetter:
    """A notification's DataValue as a Reading in °C (see the module docstring for the rules).

    ``unit_id`` is the variable's EngineeringUnits UnitId (°C, °F or K).
    """
    quality = quality_of(data.StatusCode)
    when = _stamp(data.SourceTimestamp) or _stamp(data.ServerTimestamp)
    if when is None:
        when, quality = received_at, max(quality, Quality.UNCERTAIN, key=_severity)
    raw = None if data.Value is None else data.Value.Value
    value: float | None = None
    if quality is not Quality.BAD:
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            return DeadLetter(
                source=f"opcua:{sensor_id}",
                reason=f"value is not a number: {type(raw).__name__} {str(raw)[:200]!r}",
                raw=repr(raw).encode()[:4096],
                received_at=received_at,
            )
        value = _TO_CELSIUS[unit_id](float(raw))
        if not math.isfinite(value):
            value, quality = None, Quality.BAD
    return Reading(
        sensor_id=sensor_id, time=when, value=value, quality=quality, received_at=received_at
    )


def _severity(quality: Quality) -> int:
    return {Quality.GOOD: 0, Quality.UNCERTAIN: 1, Quality.BAD: 2}[quality]


class OpcUaSource:
    """``async with OpcUaSource(cfg) as src: async for records in src: ...``"""

    def __init__(
        self,
        config: OpcUaEndpointConfig,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        rng: random.Random | None = None,
    ) -> None:
        self._cfg = config
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._last: dict[str, tuple[object, ...]] = {}
        self._generator: AsyncGenerator[tuple[AnyRecord, ...], None] | None = None
        self._reported: tuple[DeviceState, str] | None = None
        self._units: dict[str, int] = {}  # sensor id -> EngineeringUnits UnitId

    @property
    def name(self) -> str:
        return f"opcua:{self._cfg.name}"

    async def __aenter__(self) -> Self:
        self._check_files()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._generator is not None:
            await self._generator.aclose()  # disconnects the current client

    def __aiter__(self) -> AsyncIterator[tuple[AnyRecord, ...]]:
        self._generator = self._records()
        return self._generator

    def _check_files(self) -> None:
        security = self._cfg.security
        if security is None:
            return
        for path in (security.certificate, security.private_key, security.server_certificate):
            if path is not None and not path.is_file():
                raise PermanentSourceError(f"{self.name}: cannot read {path}")

    async def _records(self) -> AsyncGenerator[tuple[AnyRecord, ...], None]:
        attempt = 0
        while True:
            try:
                async with contextlib.aclosing(self._session()) as session:
                    async for records in session:
                        attempt = 0
                        yield records
            except _SessionLost as lost:
                detail = str(lost)
            status = self._status(DeviceState.OFFLINE, detail)
            if status is not None:
                yield (status,)
            await asyncio.sleep(self._backoff(attempt))
            attempt += 1

    def _backoff(self, attempt: int) -> float:
        return backoff_delay(attempt, self._cfg.backoff_initial, self._cfg.backoff_max, self._rng)

    def _status(self, state: DeviceState, detail: str) -> DeviceStatus | None:
        """A status record when state or detail changed since the last one reported."""
        if self._reported == (state, detail):
            return None
        self._reported = (state, detail)
        return DeviceStatus(
            device_id=self._cfg.name,
            device_type="opcua_server",
            state=state,
            detail=detail[:2000],
            time=self._clock(),
        )

    async def _session(self) -> AsyncGenerator[tuple[AnyRecord, ...], None]:
        """One connection: yields records until it is lost (raises _SessionLost)."""
        client = await self._new_client()
        lost = asyncio.Event()
        overflow = asyncio.Event()

        async def on_lost(err: Exception) -> None:
            lost.set()

        client.connection_lost_callback = on_lost
        try:
            await self._connect(client)
            subscription, nodes, failed = await self._subscribe(client, overflow)
            state = DeviceState.DEGRADED if failed else DeviceState.ONLINE
            detail = "connected and subscribed" + (f"; not monitored: {failed}" if failed else "")
            status = self._status(state, detail)
            if status is not None:
                yield (status,)
            notifications = self._notifications(subscription, nodes, lost, overflow)
            async with contextlib.aclosing(notifications):
                async for records in notifications:
                    yield records
        except UaStatusCodeError as err:
            raise self._classify(err) from err
        except UaError as err:
            if "No matching endpoints" in str(err):
                # The server offers no endpoint with our security policy and mode.
                raise PermanentSourceError(f"{self.name}: security mismatch: {err}") from err
            raise _SessionLost(f"{type(err).__name__}: {err}") from err
        except _TRANSIENT as err:
            raise _SessionLost(f"{type(err).__name__}: {err}") from err
        finally:
            await self._discard(client)

    def _classify(self, err: UaStatusCodeError) -> Exception:
        text = f"{type(err).__name__}: {err}"
        if any(word in text for word in _PERMANENT_WORDS):
            return PermanentSourceError(f"{self.name}: server refused us: {text}")
        return _SessionLost(text)

    async def _new_client(self) -> Client:
        cfg = self._cfg
        client = Client(
            cfg.endpoint,
            timeout=cfg.request_timeout.total_seconds(),
            watchdog_intervall=max(cfg.watchdog.total_seconds() / 3, 0.2),
        )
        client.session_timeout = int(cfg.session_timeout.total_seconds() * 1000)
        if cfg.username is not None:
            client.set_user(cfg.username)
            if cfg.password is not None:
                client.set_password(cfg.password.get_secret_value())
        security = cfg.security
        if security is not None:
            client.application_uri = security.application_uri
            mode = getattr(ua.MessageSecurityMode, security.mode)
            try:
                await client.set_security(
                    SecurityPolicyBasic256Sha256,
                    str(security.certificate),
                    str(security.private_key),
                    server_certificate=(
                        None
                        if security.server_certificate is None
                        else str(security.server_certificate)
                    ),
                    mode=mode,
                )
            except (ValueError, OSError) as err:
                raise PermanentSourceError(f"{self.name}: security setup failed: {err}") from err
        return client

    async def _connect(self, client: Client) -> None:
        async with asyncio.timeout(self._cfg.request_timeout.total_seconds() * 2):
            await client.connect()

    async def _subscribe(
        self, client: Client, overflow: asyncio.Event
    ) -> tuple[Any, dict[ua.NodeId, str], list[str]]:
        cfg = self._cfg
        namespaces = {uri: i for i, uri in enumerate(await client.get_namespace_array())}
        wanted = {_parse_node_id(text, namespaces): sensor for text, sensor in cfg.nodes.items()}
        failed: list[str] = []
        for node_id in list(wanted):
            unit, problem = await self._unit_of(client, node_id)
            if problem is not None:
                failed.append(f"{node_id.to_string()} ({problem})")
                del wanted[node_id]  # its values cannot be read as temperatures
            else:
                self._units[wanted[node_id]] = unit
        params = ua.CreateSubscriptionParameters(
            RequestedPublishingInterval=cfg.publishing_interval.total_seconds() * 1000,
            RequestedLifetimeCount=cfg.keepalive_count * 4,
            RequestedMaxKeepAliveCount=cfg.keepalive_count,
            MaxNotificationsPerPublish=0,
            PublishingEnabled=True,
            Priority=0,
        )
        subscription = await client.create_subscription(
            params, queue_maxsize=cfg.handoff_size, overflow=OverflowPolicy.DISCONNECT
        )
        subscription.set_overflow_disconnect_handler(overflow.set)
        requests = [
            self._monitor_request(node_id, handle) for handle, node_id in enumerate(wanted, 1)
        ]
        results = await subscription.create_monitored_items(requests) if requests else []
        failed += [
            f"{node_id.to_string()} ({result.name})"
            for node_id, result in zip(wanted, results, strict=True)
            if isinstance(result, ua.StatusCode)
        ]
        return subscription, wanted, failed

    async def _unit_of(self, client: Client, node_id: ua.NodeId) -> tuple[int, str | None]:
        """The variable's EngineeringUnits UnitId; °C when it declares none (documented)."""
        try:
            prop = await client.get_node(node_id).get_child("0:EngineeringUnits")
            info = await prop.read_value()
        except UaStatusCodeError:
            return _CELSIUS, None  # no EngineeringUnits property
        unit_id = int(getattr(info, "UnitId", _CELSIUS))
        if unit_id not in _TO_CELSIUS:
            name = getattr(getattr(info, "DisplayName", None), "Text", None) or hex(unit_id)
            return unit_id, f"engineering unit {name} is not °C, °F or K"
        return unit_id, None

    def _monitor_request(self, node_id: ua.NodeId, handle: int) -> ua.MonitoredItemCreateRequest:
        """Monitors the Value; StatusValueTimestamp so that a repeated value at a new time (a
        steady fridge) is still a reading, and silence stays distinguishable from steadiness."""
        params = ua.MonitoringParameters()
        params.ClientHandle = ua.UInt32(handle)
        params.SamplingInterval = ua.Double(self._cfg.sampling_interval.total_seconds() * 1000)
        params.QueueSize = ua.UInt32(self._cfg.queue_size)
        params.DiscardOldest = True
        params.Filter = ua.DataChangeFilter(Trigger=ua.DataChangeTrigger.StatusValueTimestamp)
        item = ua.ReadValueId()
        item.NodeId = node_id
        item.AttributeId = ua.UInt32(AttributeIds.Value)
        request = ua.MonitoredItemCreateRequest()
        request.ItemToMonitor = item
        request.MonitoringMode = ua.MonitoringMode.Reporting
        request.RequestedParameters = params
        return request

    async def _notifications(
        self,
        subscription: Any,
        nodes: dict[ua.NodeId, str],
        lost: asyncio.Event,
        overflow: asyncio.Event,
    ) -> AsyncGenerator[tuple[AnyRecord, ...], None]:
        watchdog = self._cfg.watchdog.total_seconds()
        tick = min(1.0, watchdog / 4)
        last_activity = time.monotonic()
        while True:
            event = await subscription.next_event(timeout=tick)
            if event is not None:
                last_activity = time.monotonic()
                record = self._event_record(event, nodes)
                if record is not None:
                    yield (record,)
            ended = self._ended(overflow, lost)
            if ended is not None:
                # What was received before the end is data: hand it over first.
                for _ in range(self._cfg.handoff_size):
                    event = await subscription.next_event(timeout=0.01)
                    if event is None:
                        break
                    record = self._event_record(event, nodes)
                    if record is not None:
                        yield (record,)
                raise _SessionLost(ended)
            last_activity = max(last_activity, subscription.last_publish_at or 0.0)
            if event is None and time.monotonic() - last_activity > watchdog:
                raise _SessionLost(f"no notification or keep-alive for {watchdog:g} s")

    @staticmethod
    def _ended(overflow: asyncio.Event, lost: asyncio.Event) -> str | None:
        if overflow.is_set():
            return "notification hand-off overflowed: values may have been missed"
        if lost.is_set():
            return "connection to the server lost"
        return None

    def _event_record(self, event: object, nodes: dict[ua.NodeId, str]) -> AnyRecord | None:
        if isinstance(event, StatusChangeEvent):
            raise _SessionLost(f"subscription status changed: {event.notification.Status}")
        if isinstance(event, DataChangeEvent):
            return self._record(event, nodes)
        return None

    def _record(self, event: DataChangeEvent, nodes: dict[ua.NodeId, str]) -> AnyRecord | None:
        sensor_id = nodes.get(event.node.nodeid)
        if sensor_id is None:
            return None  # not one of ours (cannot happen with one subscription per client)
        data = event.data.monitored_item.Value
        # A sample is identified by its source timestamp (the server says it is the same
        # measurement even if it re-reads the value); without one, by everything it carries.
        source_time = _stamp(data.SourceTimestamp)
        key: tuple[object, ...] = (
            (source_time, data.StatusCode)
            if source_time is not None
            else (data.ServerTimestamp, data.StatusCode, repr(data.Value))
        )
        if self._last.get(sensor_id) == key:
            return None  # the initial value after a reconnect, already yielded
        self._last[sensor_id] = key
        return reading_of(sensor_id, data, self._clock(), self._units.get(sensor_id, _CELSIUS))

    async def _discard(self, client: Client) -> None:
        """Closes a client that may be dead; bounded so that a hung server cannot hang us."""
        try:
            async with asyncio.timeout(self._cfg.request_timeout.total_seconds()):
                await client.disconnect()
        except (*_TRANSIENT, UaStatusCodeError) as err:
            _log.debug("%s: disconnect of a failed client: %s", self.name, err)
            client.disconnect_socket()
