"""MQTT source: temperature loggers through a broker, with nothing lost between broker and disk.

paho-mqtt (callback API v2, MQTT 5) is wrapped here and nowhere else. Its client is touched only
by one network thread that this source starts and joins; the asyncio side talks to it through
two bounded hand-offs:

* broker → asyncio: every QoS 1 message takes a slot of a semaphore of ``in_flight`` slots
  before it is handed over. The same number is sent to the broker as the MQTT 5 *Receive
  Maximum*, so the broker never has more unacknowledged messages out than there are slots.
  Overflow policy: back-pressure. If a broker ignores Receive Maximum, the network thread waits
  for a slot, so it stops reading the socket; nothing is dropped and nothing is acknowledged.
* asyncio → broker: PUBACKs (manual acknowledgement). A message is acknowledged only when the
  consumer resumes the iterator after the tuple it produced, i.e. after the consumer committed it
  (see ``edge.sources.base``). A consumer that does not resume never lets it be acknowledged, and
  the broker sends it again after a reconnect. At most one PUBACK per message in flight waits;
  a byte on a socket pair wakes the network thread's select() so that it leaves at once.

The session is persistent (``clean_start`` false, Session Expiry Interval from config; with
``mqtt_version: 3.1.1``, ``clean_session`` false and the broker's own expiry) and
subscriptions use QoS 1, so messages published while the gateway is away are delivered when it
comes back. Each connection has a generation number: messages still queued from a lost
connection are discarded unacknowledged (the broker re-sends them, MQTT 5 §4.4). A message whose
records were committed is remembered by packet id and content once its PUBACK was handed to
paho or could not be (a PUBACK written into a connection that died unnoticed is lost silently);
its re-delivery (DUP flag, or any message on a connection that resumed our session: aedes omits
the flag) is acknowledged without being yielded again, so a reconnect does not duplicate it.
A restarted broker may also re-send what it had been acknowledged for; re-sent records
carrying a device time that match one committed recently are skipped (receipt-timed ones
cannot be told apart and are kept: at-least-once).

Broker connection state leaves as ``DeviceStatus`` records (``mqtt_broker``): online, degraded
(session lost or subscription downgraded), offline. Under back-pressure the state reported is
the latest one; intermediate flaps are counted in its detail.

Exception tree (from ``edge.sources.base``)::

    SourceError
    ├── TransientSourceError    not raised: connection loss is retried here with jittered backoff
    └── PermanentSourceError    broker refused our credentials / client id, or a subscription
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import queue
import random
import select
import socket
import ssl
import threading
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from edge.backoff import backoff_delay
from edge.sources.base import PermanentSourceError
from edge.sources.mqtt_config import MqttSourceConfig
from protocols.payloads import PayloadRouter
from protocols.records import DeadLetter, DeviceState, DeviceStatus, Reading, Record

__all__ = ["MqttSource", "MqttSourceConfig"]  # the config is re-exported from mqtt_config

_log = logging.getLogger(__name__)

# CONNACK reason codes after which retrying cannot help (MQTT 5 §3.2.2.2).
_PERMANENT_CONNACK = {
    "Unsupported protocol version",
    "Client identifier not valid",
    "Bad user name or password",
    "Not authorized",
    "Banned",
    "Bad authentication method",
}


@dataclass(frozen=True)
class _Inbound:
    generation: int
    mid: int
    qos: int
    maybe_resent: bool  # DUP flag, or any message on a connection that resumed our session
    retained: bool
    topic: str
    payload: bytes
    received_at: datetime

    @cached_property
    def digest(self) -> bytes:
        return hashlib.blake2b(
            self.topic.encode() + b"\x00" + self.payload, digest_size=16
        ).digest()


@dataclass(frozen=True)
class _Ack:
    generation: int
    mid: int
    qos: int
    digest: bytes


@dataclass
class _State:
    """Broker state as last seen by the network thread, and what the consumer was told."""

    state: DeviceState = DeviceState.OFFLINE
    detail: str = "not connected yet"
    time: datetime = field(default_factory=lambda: datetime.now(UTC))
    reported: tuple[DeviceState, str] | None = (DeviceState.OFFLINE, "not connected yet")
    changes: int = 0


def _identity(record: Record) -> tuple[object, ...] | None:
    """What makes a record the same record again, or None when that cannot be known."""
    if isinstance(record, Reading):
        if record.time == record.received_at:
            return None  # timed by receipt: a re-sent copy looks like a new reading
        return (record.sensor_id, record.time, record.value, record.unit, record.quality)
    if isinstance(record, DeadLetter):
        return (record.source, hashlib.blake2b(record.raw, digest_size=16).digest())
    return None


class MqttSource:
    """``async with MqttSource(cfg) as src: async for records in src: ...`` (see module doc)."""

    def __init__(
        self,
        config: MqttSourceConfig,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        rng: random.Random | None = None,
    ) -> None:
        self._cfg = config
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._router = PayloadRouter(config.decoders, max_payload_bytes=config.max_payload_bytes)
        self._slots = threading.Semaphore(config.in_flight)
        # Holds at most one PUBACK per message in flight, so it is bounded by ``in_flight``.
        self._acks: queue.SimpleQueue[_Ack] = queue.SimpleQueue()
        self._stop = threading.Event()
        # Appended by the network thread, popped by the iterator; bounded by the slots.
        self._inbox: deque[_Inbound] = deque()
        self._wake_pending = False
        self._wakeup = asyncio.Event()
        self._subscribed = asyncio.Event()
        self._state = _State()
        self._fatal: PermanentSourceError | None = None
        # committed, its PUBACK sent or not: mid -> digest, to recognise a re-delivery
        self._recent_acks: dict[int, bytes] = {}
        self._pending_acks: dict[int, tuple[int, bytes]] = {}  # mid -> (generation, digest)
        self._committed: OrderedDict[tuple[object, ...], None] = OrderedDict()
        self._committed_bound = max(1024, 16 * config.in_flight)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._network: asyncio.Task[None] | None = None
        self._client: paho.Client | None = None
        self._net_generation = 0
        self._session_lost = False
        self._session_resumed = False  # network thread: this connection resumed our session
        # Wakes the network thread's select() when a PUBACK is queued (made on enter).
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._ack_signal = False

    @property
    def name(self) -> str:
        return f"mqtt:{self._cfg.name}"

    async def __aenter__(self) -> Self:
        self._loop = asyncio.get_running_loop()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._client = self._make_client()
        self._network = asyncio.create_task(
            asyncio.to_thread(self._network_main), name=f"{self.name} network"
        )
        # Entered means subscribed when the broker is reachable: messages published right after
        # a first start (no session yet) are not missed. An unreachable broker does not block
        # the start for longer than the connect timeout; the source then keeps retrying.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._cfg.connect_timeout.total_seconds()):
                await self._subscribed.wait()
        if self._fatal is not None:
            await self.__aexit__(None, None, None)
            raise self._fatal
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        try:
            if self._network is not None:
                # The thread notices the stop flag within one poll interval (or one slot wait).
                await asyncio.shield(self._network)
        finally:
            for sock in (self._wake_r, self._wake_w):
                if sock is not None:
                    sock.close()

    def __aiter__(self) -> AsyncIterator[tuple[Record, ...]]:
        return self._records()

    # ------------------------------------------------------------------ asyncio side

    async def _records(self) -> AsyncIterator[tuple[Record, ...]]:
        while True:
            if self._fatal is not None:
                raise self._fatal
            status = self._status_to_report()
            if status is not None:
                yield (status,)
                continue
            if not self._inbox:
                self._wakeup.clear()
                if self._inbox:
                    continue  # arrived while we looked
                if self._network is not None and self._network.done():
                    self._network.result()  # re-raises a crash of the network thread
                    raise PermanentSourceError(f"{self.name}: network thread stopped")
                await self._wakeup.wait()
                continue
            item = self._inbox.popleft()
            try:
                records = self._accept(item)
                if records:
                    yield records
                    # Resumed: the consumer has committed the records.
                    self._remember_committed(records)
                    self._acknowledge(item)
            finally:
                self._slots.release()

    def _accept(self, item: _Inbound) -> tuple[Record, ...]:
        """The records of a message, or () when it must not be yielded (stale or re-delivered)."""
        if item.generation != self._net_generation:
            return ()  # from a lost connection: the broker sends it again
        if self._is_redelivery(item):
            self._acknowledge(item)  # already committed; only its PUBACK was missing
            return ()
        records = self._router.decode(
            item.topic, item.payload, item.received_at, retained=item.retained
        )
        if item.maybe_resent:
            # A broker may re-send what it had already been acknowledged for (Mosquitto does
            # after a restart), or what our PUBACK, sent as the connection died, never reached
            # (without the DUP flag: aedes). Records that carry their device time are recognised and
            # skipped; receipt-timed ones (Shelly) cannot be told apart and are kept.
            records = tuple(r for r in records if _identity(r) not in self._committed)
        if not records:
            self._acknowledge(item)
        return records

    def _remember_committed(self, records: tuple[Record, ...]) -> None:
        for record in records:
            key = _identity(record)
            if key is not None:
                self._committed[key] = None
                self._committed.move_to_end(key)
        while len(self._committed) > self._committed_bound:
            self._committed.popitem(last=False)

    def _is_redelivery(self, item: _Inbound) -> bool:
        committed = self._recent_acks.pop(item.mid, None)
        pending = self._pending_acks.get(item.mid)
        if pending is not None and pending[0] < item.generation:
            del self._pending_acks[item.mid]
            committed = committed or pending[1]
        return item.maybe_resent and committed == item.digest

    def _acknowledge(self, item: _Inbound) -> None:
        if item.qos == 0:
            return
        if item.generation != self._net_generation:
            self._remember_ack(item.mid, item.digest)
            return
        self._pending_acks[item.mid] = (item.generation, item.digest)
        self._acks.put(_Ack(item.generation, item.mid, item.qos, item.digest))
        if not self._ack_signal and self._wake_w is not None:
            self._ack_signal = True
            with contextlib.suppress(BlockingIOError):  # a full pipe already wakes the thread
                self._wake_w.send(b"\x00")

    def _status_to_report(self) -> DeviceStatus | None:
        state = self._state
        current = (state.state, state.detail)
        if state.changes == 0:
            return None
        # Several changes since the last report (an outage shorter than the consumer's pause
        # included) are reported even if the state is back where it was.
        detail = state.detail
        if state.changes > 1:
            detail = f"{detail} ({state.changes} state changes since the last report)"
        state.reported = current
        state.changes = 0
        return DeviceStatus(
            device_id=self._cfg.name,
            device_type="mqtt_broker",
            state=state.state,
            detail=detail[:2000],
            time=state.time,
        )

    # Called on the event loop by the network thread (call_soon_threadsafe).

    def _wake(self) -> None:
        self._wake_pending = False
        self._wakeup.set()

    def _set_state(self, state: DeviceState, detail: str, time: datetime) -> None:
        if (state, detail) == (self._state.state, self._state.detail):
            return
        self._state.state, self._state.detail, self._state.time = state, detail, time
        self._state.changes += 1
        self._wakeup.set()

    def _ack_result(self, ack: _Ack) -> None:
        if self._pending_acks.get(ack.mid) != (ack.generation, ack.digest):
            return  # already resolved: its re-delivery was recognised
        del self._pending_acks[ack.mid]
        # Sent or not, recognise a re-delivery: a PUBACK written into a connection that had
        # died unnoticed (its peer reset it) is lost without any error here.
        self._remember_ack(ack.mid, ack.digest)

    def _remember_ack(self, mid: int, digest: bytes) -> None:
        self._recent_acks[mid] = digest
        if len(self._recent_acks) > 2 * self._cfg.in_flight:
            # Forgetting an entry can only cause a duplicate later, never a loss.
            self._recent_acks.pop(next(iter(self._recent_acks)))

    def _fail(self, error: PermanentSourceError) -> None:
        self._fatal = error
        self._wakeup.set()
        self._subscribed.set()  # ends the wait on enter: the error is raised there

    def _post(self, callback: Callable[..., None], *args: Any) -> None:
        assert self._loop is not None
        with contextlib.suppress(RuntimeError):  # loop closed while shutting down
            self._loop.call_soon_threadsafe(callback, *args)

    # ------------------------------------------------------------------ network thread

    def _make_client(self) -> paho.Client:
        client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=self._cfg.client_id,
            protocol=paho.MQTTv5 if self._v5 else paho.MQTTv311,
            # MQTT 3.1.1 has no Session Expiry: the session is kept as long as the broker keeps
            # it; clean_session false asks for it to be kept at all.
            clean_session=None if self._v5 else False,
            manual_ack=True,
        )
        client.connect_timeout = self._cfg.connect_timeout.total_seconds()
        if self._cfg.username is not None:
            password = self._cfg.password.get_secret_value() if self._cfg.password else None
            client.username_pw_set(self._cfg.username, password)
        if urlsplit(self._cfg.broker_url).scheme == "mqtts":
            client.tls_set_context(ssl.create_default_context())
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        return client

    @property
    def _v5(self) -> bool:
        return self._cfg.mqtt_version == "5"

    def _session_arguments(self) -> dict[str, Any]:
        """MQTT 5 asks for the session and the Receive Maximum in CONNECT; 3.1.1 has neither
        (the session was asked for by the client's clean_session, and back-pressure rests on
        the slots alone: the network thread stops reading the socket)."""
        if not self._v5:
            return {}
        return {"clean_start": False, "properties": self._connect_properties()}

    def _connect_properties(self) -> Properties:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = int(self._cfg.session_expiry.total_seconds())
        props.ReceiveMaximum = self._cfg.in_flight
        return props

    def _network_main(self) -> None:
        client = self._client
        assert client is not None
        attempt = 0
        first = True
        while not self._stop.is_set() and self._fatal is None:
            try:
                if first:
                    client.connect(
                        self._cfg.host,
                        self._cfg.port,
                        keepalive=int(self._cfg.keepalive.total_seconds()),
                        **self._session_arguments(),
                    )
                    first = False
                else:
                    client.reconnect()
            except (OSError, ssl.SSLError) as err:
                self._offline(f"cannot connect to {self._cfg.host}:{self._cfg.port}: {err}")
            else:
                if self._drive(client):
                    attempt = 0
                self._offline("connection to the broker lost")
            if self._stop.wait(
                backoff_delay(attempt, self._cfg.backoff_initial, self._cfg.backoff_max, self._rng)
            ):
                break
            attempt += 1
        self._shutdown(client)

    def _drive(self, client: paho.Client) -> bool:
        """Runs one connection until it drops or we stop; True when it had been established.

        paho's external-loop API (``loop_read``/``loop_write``/``loop_misc``) lets our own
        select() also watch a wake-up socket, so a PUBACK queued by the consumer leaves at once
        instead of at the next poll tick.
        """
        generation = self._net_generation
        tick = self._cfg.poll_interval.total_seconds()
        ok = MQTTErrorCode.MQTT_ERR_SUCCESS
        while not self._stop.is_set() and self._fatal is None:
            self._flush_acks(client)
            sock = client.socket()
            if sock is None:
                break
            pending = getattr(sock, "pending", lambda: 0)()  # TLS bytes already decrypted
            watched: list[Any] = [sock] if self._wake_r is None else [sock, self._wake_r]
            writers: list[Any] = [sock] if client.want_write() else []
            readable, _, _ = select.select(watched, writers, [], 0 if pending else tick)
            if self._wake_r is not None and self._wake_r in readable:
                self._ack_signal = False
                with contextlib.suppress(BlockingIOError):
                    self._wake_r.recv(4096)
                self._flush_acks(client)
            if (sock in readable or pending) and client.loop_read() != ok:
                break
            if client.want_write() and client.loop_write() not in (
                ok,
                MQTTErrorCode.MQTT_ERR_AGAIN,
            ):
                break
            if client.loop_misc() != ok:
                break
        return self._net_generation != generation

    def _flush_acks(self, client: paho.Client) -> None:
        while True:
            try:
                ack = self._acks.get_nowait()
            except queue.Empty:
                return
            if ack.generation == self._net_generation and client.is_connected():
                client.ack(ack.mid, ack.qos)  # a failure here is a lost connection: re-sent
            self._post(self._ack_result, ack)

    def _shutdown(self, client: paho.Client) -> None:
        if client.is_connected():
            self._flush_acks(client)
            # A DISCONNECT keeps the session (its expiry was set at connect).
            client.disconnect()
            for _ in range(50):
                if client.loop(timeout=0.01) != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    break
        self._offline("source stopped" if self._fatal is None else str(self._fatal))

    def _offline(self, detail: str) -> None:
        self._post(self._set_state, DeviceState.OFFLINE, detail, self._clock())

    # paho callbacks, on the network thread

    def _on_connect(
        self,
        client: paho.Client,
        userdata: object,
        flags: paho.ConnectFlags,
        reason: Any,
        properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            detail = f"broker refused the connection: {reason}"
            if str(reason) == "Unsupported protocol version" and self._v5:
                detail += " (a broker without MQTT 5: set mqtt_version: 3.1.1)"
            if str(reason) in _PERMANENT_CONNACK:
                self._post(self._fail, PermanentSourceError(f"{self.name}: {detail}"))
            self._offline(detail)
            client.disconnect()
            return
        self._net_generation += 1
        self._session_lost = not flags.session_present and self._net_generation > 1
        self._session_resumed = flags.session_present and self._net_generation > 1
        # MQTT 3.1.1 has no Retain Handling: its broker sends retained messages on every
        # SUBSCRIBE, so they are marked retained (Shelly: uncertain) and may come again.
        topics = self._router.subscriptions
        if self._v5:
            options = SubscribeOptions(
                qos=1, retainHandling=SubscribeOptions.RETAIN_SEND_IF_NEW_SUB
            )
            client.subscribe([(topic, options) for topic in topics])
        else:
            client.subscribe([(topic, 1) for topic in topics])

    def _on_subscribe(
        self,
        client: paho.Client,
        userdata: object,
        mid: int,
        reasons: list[Any],
        properties: Properties | None,
    ) -> None:
        state, detail = DeviceState.ONLINE, "connected and subscribed"
        if self._session_lost:
            # The broker forgot our session: what was published while we were away is gone.
            state, detail = DeviceState.DEGRADED, "connected, but the broker had lost our session"
        for topic, reason in zip(self._router.subscriptions, reasons, strict=False):
            if reason.is_failure:
                error = PermanentSourceError(
                    f"{self.name}: subscription to {topic} refused: {reason}"
                )
                self._post(self._fail, error)
                return
            if reason.value == 0:
                state, detail = DeviceState.DEGRADED, f"broker granted QoS 0 on {topic}"
        self._post(self._set_state, state, detail, self._clock())
        self._post(self._subscribed.set)

    def _on_message(self, client: paho.Client, userdata: object, msg: paho.MQTTMessage) -> None:
        item = _Inbound(
            generation=self._net_generation,
            mid=msg.mid,
            qos=msg.qos,
            # aedes re-sends unacknowledged messages after a reconnect without the DUP flag
            # (MQTT 3.1.1 §3.3.1.1 asks for it), so the flag alone cannot be trusted.
            maybe_resent=bool(msg.dup) or self._session_resumed,
            retained=bool(msg.retain),
            topic=msg.topic,
            payload=bytes(msg.payload),
            received_at=self._clock(),
        )
        # Back-pressure: wait for a slot instead of dropping; give up only when stopping, in
        # which case the message stays unacknowledged and the broker keeps it.
        while not self._slots.acquire(timeout=0.1):
            if self._stop.is_set():
                return
        # deque.append is atomic; one wake-up call covers every message appended before it
        # runs, so a burst costs one loop wake-up, not one per message.
        self._inbox.append(item)
        if not self._wake_pending:
            self._wake_pending = True
            self._post(self._wake)
