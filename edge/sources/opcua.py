"""OPC-UA source: data-change subscriptions on a server's temperature variables.

asyncua stays inside this module (and its two helpers, :mod:`edge.sources.opcua_values` for
DataValue → record rules, :mod:`edge.sources.opcua_history` for reading back gaps). For each
connection a new ``Client`` is made, connected (optionally with Basic256Sha256 Sign or
SignAndEncrypt and a client certificate), and one subscription monitors every configured node
with the configured sampling and publishing intervals. Notifications become ``Reading`` records;
one value that cannot become a reading (a SourceTimestamp of 1900, a string…) becomes a
``DeadLetter`` or a reading marked ``uncertain``, and never stops the others.

Per node, not per server: a node whose namespace URI the server lacks, whose id the server does
not know, or whose EngineeringUnits are not a temperature, is not monitored; the status is
``degraded`` and names it, and every other node keeps flowing.

Reconnection does not rely on asyncua's own reconnect, which is known to hang when a dead
connection is reused (FreeOpcUa/opcua-asyncio#1660: "the application would sometimes end up
hanging ad infinitum when trying to connect the same Client instance again"; the fix reported
there is re-creating the client). Here every failure discards the client (its disconnect bounded
by the request timeout), waits a jittered exponential backoff and builds a new one, which
re-subscribes. An unreachable server is always transient, also at first start and also while
fetching the server certificate from its endpoints (SignAndEncrypt without a pinned
certificate). A silence watchdog reconnects when neither a notification nor a keep-alive
arrived for ``watchdog``; the server is asked for a keep-alive every ``publishing_interval x
keepalive_count``, which the configuration checks is well below the watchdog.

After a reconnect, what the server published in between is read back with HistoryRead for
nodes that keep history, else the gap is recorded with its reason (``opcua_history``). Samples
are de-duplicated by source timestamp and status: the current value a server repeats after
re-subscribing, or a value both read back and notified, is yielded once.

Overflow: the subscription's hand-off queue is bounded (``handoff_size``); if the consumer falls
so far behind that it fills, the connection is dropped and re-established (named policy
"disconnect"); the ``offline`` status of that moment says values may have been missed (and the
history read-back recovers them where the server keeps history). Server connection state leaves
as ``DeviceStatus`` records (``opcua_server``), with status codes by name.

Exception tree (from ``edge.sources.base``)::

    SourceError
    ├── TransientSourceError    not raised: connection problems are retried here
    └── PermanentSourceError    certificate or key unreadable, our certificate or identity
                                refused by the server, no endpoint with our security: raised
                                after an ``offline`` status that says what to do
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

from asyncua import ua
from asyncua.client.client import Client
from asyncua.common.subscription import DataChangeEvent, OverflowPolicy, StatusChangeEvent
from asyncua.crypto import uacrypto
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256
from asyncua.ua.attribute_ids import AttributeIds
from asyncua.ua.uaerrors import UaError, UaStatusCodeError
from cryptography.hazmat.primitives.serialization import Encoding

from edge.backoff import backoff_delay
from edge.sources.base import PermanentSourceError
from edge.sources.opcua_config import (
    OpcUaEndpointConfig,
    OpcUaSecurity,
    UnknownNamespaceError,
    monitor_request,
    parse_node_id,
)
from edge.sources.opcua_history import (
    HISTORY_READ_BIT,
    delivered_until,
    gap_end,
    gap_start,
    read_raw,
)
from edge.sources.opcua_values import (
    CELSIUS,
    TO_CELSIUS,
    RecentSamples,
    dead_letter,
    quality_of,
    reading_of,
    record_of,
    sample_key,
    source_time,
    status_name,
    usable_time,
)
from protocols.records import (
    EARLIEST,
    LATEST,
    DeviceState,
    DeviceStatus,
    Reading,
)
from protocols.records import Record as AnyRecord

__all__ = ["OpcUaEndpointConfig", "OpcUaSecurity", "OpcUaSource", "quality_of", "reading_of"]

_log = logging.getLogger(__name__)

_TRANSIENT = (OSError, TimeoutError, ConnectionError, UaError, asyncio.TimeoutError)
_REFUSED_CERTIFICATE = ("BadCertificate", "BadSecurity", "BadNonce", "BadApplicationSignature")
_REFUSED_IDENTITY = ("BadIdentity", "BadUser")
# Status codes of a HistoryRead that mean the session, not the history, failed.
_SESSION_GONE = (
    "BadSession",
    "BadSecureChannel",
    "BadConnection",
    "BadServerNot",
    "BadShutdown",
    "BadServerHalted",
    "BadCommunicationError",
    "BadTcp",
)
_HISTORY_CHUNK = 500  # records per yielded tuple when reading back a gap


class _SessionLost(Exception):  # noqa: N818 - internal signal, never leaves the module
    """The current connection is unusable; the reason goes into the offline status."""


class _Refused(Exception):  # noqa: N818 - internal signal, leaves as PermanentSourceError
    """The server refused us for a reason retrying cannot fix; the text says what to do."""


@dataclass(frozen=True, slots=True)
class _Node:
    """One monitored variable as this connection found it."""

    sensor_id: str
    unit: int
    history: bool


def _failed_in(err: BaseException) -> str:
    """The name of the function in which ``err`` was raised (the innermost frame)."""
    tb = err.__traceback__
    if tb is None:
        return ""
    while tb.tb_next is not None:
        tb = tb.tb_next
    return tb.tb_frame.f_code.co_name


def _first_der(chain: bytes) -> bytes:
    """The first certificate of an endpoint's DER chain, DER encoded."""
    cert = uacrypto.x509_from_der(chain)  # type: ignore[no-untyped-call]
    if cert is None:
        raise _Refused("the server's endpoint carries no certificate: pin server_certificate")
    der: bytes = cert.public_bytes(Encoding.DER)
    return der


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
        self._recent: dict[str, RecentSamples] = {}
        self._last_time: dict[str, datetime] = {}  # sensor -> newest source time yielded
        self._watched_since: dict[str, datetime] = {}  # sensor -> subscribed since (gateway)
        self._gap_open = False  # a subscribed session was lost: read back or record the gap
        self._open_gaps: dict[str, tuple[datetime, datetime]] = {}  # sensor -> recorded gap
        self._delivered_until: datetime | None = None  # opcua_history.delivered_until
        self._generator: AsyncGenerator[tuple[AnyRecord, ...], None] | None = None
        self._reported: tuple[DeviceState, str] | None = None

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
            except _Refused as refused:
                status = self._status(DeviceState.OFFLINE, str(refused))
                if status is not None:
                    yield (status,)  # committed before the error stops the source
                raise PermanentSourceError(f"{self.name}: {refused}") from refused
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
        client = self._new_client()
        lost = asyncio.Event()
        overflow = asyncio.Event()

        async def on_lost(err: Exception) -> None:
            lost.set()

        client.connection_lost_callback = on_lost
        try:
            await self._secure(client)
            await self._connect(client)
            subscription, nodes, failed = await self._subscribe(client, overflow)
            state = DeviceState.DEGRADED if failed else DeviceState.ONLINE
            detail = "connected and subscribed" + (
                f"; not monitored: {'; '.join(failed)}" if failed else ""
            )
            status = self._status(state, detail)
            if status is not None:
                yield (status,)
            async for records in self._recover(client, nodes):
                yield records
            now = self._clock()
            for node in nodes.values():
                self._watched_since.setdefault(node.sensor_id, now)
            self._gap_open = True  # from here on, losing this session leaves a gap
            notifications = self._notifications(subscription, nodes, lost, overflow)
            try:
                async with contextlib.aclosing(notifications):
                    async for records in notifications:
                        yield records
            except _SessionLost:  # what it handed over marks where a gap starts
                published = None if overflow.is_set() else subscription.last_publish_at
                self._delivered_until = delivered_until(
                    self._clock(), time.monotonic(), published, self._cfg.publishing_interval
                )
                raise
        except UaStatusCodeError as err:
            raise self._classify(err) from err
        except UaError as err:
            if "No matching endpoints" in str(err):
                raise _Refused(
                    f"security mismatch: the server offers no endpoint with our security "
                    f"({self._security_mode()}): {err}; change security in the configuration "
                    "or on the server, then restart the source"
                ) from err
            raise _SessionLost(f"{type(err).__name__}: {err}") from err
        except _TRANSIENT as err:
            raise _SessionLost(f"{type(err).__name__}: {err}") from err
        finally:
            await self._discard(client)

    def _security_mode(self) -> str:
        security = self._cfg.security
        return "None" if security is None else f"Basic256Sha256 {security.mode}"

    def _classify(self, err: UaStatusCodeError) -> Exception:
        name = status_name(err.code)
        if name.startswith(_REFUSED_CERTIFICATE):
            return _Refused(self._certificate_advice(name))
        if name.startswith(_REFUSED_IDENTITY):
            return _Refused(
                f"the server refused our user identity ({name}): check username and password "
                "of this endpoint, then restart the source"
            )
        return _SessionLost(f"{name}: {err}")

    def _certificate_advice(self, what: str) -> str:
        security = self._cfg.security
        ours = "no client certificate" if security is None else f"{security.certificate}"
        uri = "" if security is None else f" and {security.application_uri} in its SAN"
        return (
            f"the server refused our certificate ({what}): make the server trust the edge "
            f"certificate {ours} (move it from the server's rejected to its trusted "
            f"certificates), check that it is valid now{uri}, then restart the source"
        )

    def _new_client(self) -> Client:
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
        return client

    async def _secure(self, client: Client) -> None:
        """Basic256Sha256 with our certificate; the server's is pinned or read from its
        endpoints (a network step: a server that is away is transient, never permanent)."""
        security = self._cfg.security
        if security is None:
            return
        client.application_uri = security.application_uri
        mode = getattr(ua.MessageSecurityMode, security.mode)
        server: str | bytes
        if security.server_certificate is not None:
            server = str(security.server_certificate)
        else:
            async with asyncio.timeout(self._cfg.request_timeout.total_seconds() * 2):
                endpoints = await client.connect_and_get_server_endpoints()
            endpoint = Client.find_endpoint(endpoints, mode, SecurityPolicyBasic256Sha256.URI)
            server = _first_der(endpoint.ServerCertificate)
        try:
            await client.set_security(
                SecurityPolicyBasic256Sha256,
                str(security.certificate),
                str(security.private_key),
                server_certificate=server,
                mode=mode,
            )
        except (ValueError, OSError) as err:  # only local files are read here
            raise _Refused(
                f"security setup failed: {err}; check certificate, private key and that "
                f"{security.application_uri} is the URI in the certificate's SAN"
            ) from err

    async def _connect(self, client: Client) -> None:
        try:
            async with asyncio.timeout(self._cfg.request_timeout.total_seconds() * 2):
                await client.connect()
        except AssertionError as err:
            # asyncua cannot parse the ServiceFault a server such as node-opcua sends in answer
            # to OpenSecureChannel when it rejects our certificate (BadSecurityChecksFailed):
            # its OpenSecureChannel then fails on an assertion. Only that case is a refusal;
            # an assertion anywhere else is a failed connection like any other.
            if self._cfg.security is None or _failed_in(err) != "open_secure_channel":
                raise _SessionLost(f"asyncua failed while connecting: {err!r}") from err
            raise _Refused(
                self._certificate_advice(
                    "OpenSecureChannel refused with a fault asyncua cannot decode, as "
                    "node-opcua's BadSecurityChecksFailed"
                )
            ) from err

    async def _subscribe(
        self, client: Client, overflow: asyncio.Event
    ) -> tuple[Any, dict[ua.NodeId, _Node], list[str]]:
        cfg = self._cfg
        namespaces = {uri: i for i, uri in enumerate(await client.get_namespace_array())}
        wanted: dict[ua.NodeId, _Node] = {}
        failed: list[str] = []
        for text, sensor_id in cfg.nodes.items():
            try:
                node_id = parse_node_id(text, namespaces)
            except UnknownNamespaceError as err:
                failed.append(f"{text} ({err})")
                continue
            node, problem = await self._describe(client, node_id, sensor_id)
            if problem is not None:
                failed.append(f"{node_id.to_string()} ({problem})")
            else:
                wanted[node_id] = node
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
            monitor_request(cfg, node_id, handle) for handle, node_id in enumerate(wanted, 1)
        ]
        results = await subscription.create_monitored_items(requests) if requests else []
        for node_id, result in zip(list(wanted), results, strict=True):
            if isinstance(result, ua.StatusCode):
                failed.append(f"{node_id.to_string()} ({status_name(result)})")
                del wanted[node_id]
        return subscription, wanted, failed

    async def _describe(
        self, client: Client, node_id: ua.NodeId, sensor_id: str
    ) -> tuple[_Node, str | None]:
        """The variable's unit (°C when it declares none, documented) and history support."""
        node = client.get_node(node_id)
        try:
            access = await node.read_attribute(AttributeIds.AccessLevel)
            level = int(access.Value.Value) if access.Value is not None else 0
        except UaStatusCodeError as err:
            return _Node(sensor_id, CELSIUS, False), status_name(err.code)
        except (TypeError, ValueError):
            level = 0
        history = bool(level & HISTORY_READ_BIT)
        try:
            prop = await node.get_child("0:EngineeringUnits")
            info = await prop.read_value()
        except UaStatusCodeError:
            return _Node(sensor_id, CELSIUS, history), None  # no EngineeringUnits property
        try:
            unit_id = int(getattr(info, "UnitId", CELSIUS))
        except (TypeError, ValueError):
            return _Node(sensor_id, CELSIUS, history), f"unreadable EngineeringUnits {info!r}"
        if unit_id not in TO_CELSIUS:
            name = getattr(getattr(info, "DisplayName", None), "Text", None) or hex(unit_id)
            return _Node(sensor_id, unit_id, history), f"engineering unit {name} is not °C, °F or K"
        return _Node(sensor_id, unit_id, history), None

    async def _recover(
        self, client: Client, nodes: dict[ua.NodeId, _Node]
    ) -> AsyncGenerator[tuple[AnyRecord, ...], None]:
        """After a lost session: read back each node's gap, or record it with the reason.

        Connection errors propagate (the gap stays open and is tried again next time)."""
        if not self._gap_open:
            return
        end = self._clock()
        for node_id, node in nodes.items():
            start = self._last_time.get(node.sensor_id) or self._watched_since.get(node.sensor_id)
            if start is None:
                continue  # never monitored before: nothing was expected from it
            async for records in self._read_back(client, node_id, node, start, end):
                yield records
        self._gap_open = False

    async def _read_back(
        self, client: Client, node_id: ua.NodeId, node: _Node, start: datetime, end: datetime
    ) -> AsyncGenerator[tuple[AnyRecord, ...], None]:
        # A gap that cannot be read back starts where the lost session stopped delivering: a
        # steady sensor's last source time may be long before it (its value did not change).
        known = self._delivered_until
        gap_from = start if known is None or not start < known < end else known
        if not node.history:
            reason = "the server keeps no history for this node (no HistoryRead access)"
        elif not self._cfg.history_read:
            reason = "reading back history is switched off (history_read: false)"
        else:
            limit = self._cfg.request_timeout.total_seconds() * 4
            try:
                async with asyncio.timeout(limit):
                    # No end time: the server's clock may run ahead of the gateway's.
                    history = await read_raw(client, node_id, start, None, self._cfg.history_limit)
            except UaStatusCodeError as err:
                name = status_name(err.code)
                if name.startswith(_SESSION_GONE):
                    raise  # the session broke: reconnect and try the read-back again
                reason = f"HistoryRead refused: {name}"
            except TimeoutError:
                # The session may be fine; a server too slow to answer must not keep the live
                # values waiting behind an endless retry of the read-back.
                reason = f"HistoryRead did not answer within {limit:g} s"
            else:
                records = [r for data in history.values for r in self._value_records(node, data)]
                for i in range(0, len(records), _HISTORY_CHUNK):
                    yield tuple(records[i : i + _HISTORY_CHUNK])
                if history.complete:
                    return
                gap_from = self._last_time.get(node.sensor_id, start)  # not read after it
                reason = f"more than history_limit ({self._cfg.history_limit}) values in the gap"
        gap_from, end = max(gap_from, EARLIEST), min(end, LATEST)
        self._open_gaps[node.sensor_id] = (gap_from, end)  # closed by its next reading
        yield (gap_start(node.sensor_id, gap_from, end, reason),)

    async def _notifications(
        self,
        subscription: Any,
        nodes: dict[ua.NodeId, _Node],
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
                records = self._event_records(event, nodes)
                if records:
                    yield records
            ended = self._ended(overflow, lost)
            if ended is not None:
                # What was received before the end is data: hand it over first.
                for _ in range(self._cfg.handoff_size):
                    event = await subscription.next_event(timeout=0.01)
                    if event is None:
                        break
                    records = self._event_records(event, nodes)
                    if records:
                        yield records
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

    def _event_records(self, event: object, nodes: dict[ua.NodeId, _Node]) -> tuple[AnyRecord, ...]:
        if isinstance(event, StatusChangeEvent):
            status = getattr(event.notification, "Status", None)
            raise _SessionLost(f"subscription status changed: {status_name(status)}")
        if not isinstance(event, DataChangeEvent):
            return ()
        try:
            node = nodes.get(event.node.nodeid)
            if node is None:
                return ()  # not one of ours (cannot happen with one subscription per client)
            return self._value_records(node, event.data.monitored_item.Value)
        except (AttributeError, TypeError, ValueError, OverflowError) as err:
            # A notification we cannot take apart costs only itself.
            reason = f"unreadable notification: {err}"
            return (dead_letter(self._cfg.name, reason, event, self._clock()),)

    def _value_records(self, node: _Node, data: ua.DataValue) -> tuple[AnyRecord, ...]:
        """One DataValue as its record; none when this sample was already yielded. The first
        reading after a recorded gap closes it (a status at that reading's time)."""
        sensor_id = node.sensor_id
        key = sample_key(data)
        if key is not None and not self._recent.setdefault(sensor_id, RecentSamples()).add(key):
            return ()  # the repeat after a reconnect, or read back and notified
        when = usable_time(source_time(data.SourceTimestamp))
        if when is not None:
            known = self._last_time.get(sensor_id)
            self._last_time[sensor_id] = when if known is None else max(known, when)
        record = record_of(sensor_id, data, self._clock(), node.unit)
        gap = self._open_gaps.pop(sensor_id, None) if isinstance(record, Reading) else None
        if gap is None or not isinstance(record, Reading):
            return (record,)
        # Never later than receipt: a status must not claim the sensor was seen in the future.
        at = max(min(record.time, record.received_at), gap[0])
        return (record, gap_end(sensor_id, gap[0], gap[1], at))

    async def _discard(self, client: Client) -> None:
        """Closes a client that may be dead; bounded so that a hung server cannot hang us."""
        try:
            async with asyncio.timeout(self._cfg.request_timeout.total_seconds()):
                await client.disconnect()
        except (*_TRANSIENT, UaStatusCodeError) as err:
            _log.debug("%s: disconnect of a failed client: %s", self.name, err)
            client.disconnect_socket()
