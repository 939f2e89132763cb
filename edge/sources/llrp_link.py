"""One sllurp connection to one reader: the only place that touches sllurp and its thread.

:class:`LlrpLink` owns one ``LLRPReaderClient`` and its socket thread for the life of one TCP
connection; :class:`~edge.sources.llrp.LlrpSource` makes a new link for every reconnection.
See :mod:`edge.sources.llrp` for the hand-off and back-pressure rules.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import socket
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sllurp.llrp import (
    LLRPClient,
    LLRPMessage,
    LLRPReaderClient,
    LLRPReaderConfig,
    LLRPReaderState,
)
from sllurp.llrp_errors import LLRPError, ReaderConfigurationError

from edge.clock import Clock
from edge.sources.llrp_uptime import ReaderUptime
from protocols.llrp.errors import FramingError, LlrpError
from protocols.llrp.frame import HEADER, HEADER_SIZE, Frame, Framer
from protocols.llrp.messages import MessageType, decode_message
from protocols.llrp.reports import ReaderEvent, TagReport, status_name, status_of, tag_reports
from protocols.records import DeadLetter, Quality, Record, TagRead

log = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_PUT_POLL = 0.1  # seconds between checks of "closing" while waiting for queue room
_DEAD_CHUNK = 64 * 1024  # bytes per dead letter of a broken stream
_DEAD_STREAM_LIMIT = 16  # dead letters per broken stream (1 MiB); the reason says if cut
_SENT_KEPT = 64  # message ids of our latest requests, to name what an ERROR_MESSAGE answers
# ConnectionAttemptEvent status (LLRP 1.0.1 §13.2.6.6); 4 is sent to the client already
# connected when another one tries, and is not a refusal.
_CONNECTION_REFUSED = {
    1: "another client is connected (a reader-initiated connection already exists)",
    2: "another client is connected (a client-initiated connection already exists)",
    3: "the reader refused the connection for a reason other than an existing connection",
}


class ErrorBudget:
    """Device errors that repeat on every reconnection are dead-lettered once each, and at
    most ``limit`` distinct ones per source: evidence, not a flood. Shared by the links of one
    source, used from their socket threads."""

    def __init__(self, limit: int = 16) -> None:
        self._seen: set[bytes] = set()
        self._limit = limit
        self._lock = threading.Lock()

    def admit(self, key: bytes) -> bool:
        """True the first time ``key`` is seen, while the budget lasts."""
        with self._lock:
            if key in self._seen or len(self._seen) >= self._limit:
                return False
            self._seen.add(key)
            return True


@dataclass(frozen=True, slots=True)
class LinkSettings:
    """What one connection needs, in sllurp's units (milliseconds, indices)."""

    reader_id: str
    host: str
    port: int
    antennas: tuple[int, ...]
    tx_power_index: int
    session: int
    tag_population: int
    report_every_n_tags: int
    report_timeout_ms: int
    keepalive_ms: int
    connect_timeout: float

    def sllurp_config(self) -> LLRPReaderConfig:
        return LLRPReaderConfig(
            {
                "antennas": list(self.antennas),
                "tx_power": self.tx_power_index,
                "session": self.session,
                "tag_population": self.tag_population,
                "report_every_n_tags": self.report_every_n_tags,
                "report_timeout_ms": self.report_timeout_ms,
                "keepalive_interval": self.keepalive_ms,
                "reconnect": False,  # our supervisor reconnects
                "start_inventory": True,
                "reset_on_connect": True,
                "tag_content_selector": {
                    "EnableROSpecID": False,
                    "EnableSpecIndex": False,
                    "EnableInventoryParameterSpecID": False,
                    "EnableAntennaID": True,
                    "EnableChannelIndex": False,
                    "EnablePeakRSSI": True,
                    "EnableFirstSeenTimestamp": True,
                    "EnableLastSeenTimestamp": True,
                    "EnableTagSeenCount": True,
                    "EnableAccessSpecID": False,
                },
            }
        )


def _utc(microseconds: int | None) -> datetime | None:
    if microseconds is None:
        return None
    return _EPOCH + timedelta(microseconds=microseconds)


def tag_read(
    reader_id: str, report: TagReport, received_at: datetime, uptime: ReaderUptime | None = None
) -> TagRead:
    """Our record for one TagReportData.

    UTC timestamps are used as sent. Uptime timestamps are mapped onto the gateway's clock with
    ``uptime`` (the connection's boot estimate) and the read is marked ``uncertain``, as is one
    timed by receipt because the reader sent no timestamp at all.

    >>> r = TagReport(epc="3000ABCDEF00000000000003", antenna_id=2, peak_rssi=-51,
    ...               first_seen_utc=1_700_000_000_000_000, tag_seen_count=4)
    >>> t = tag_read("dock-1", r, datetime(2024, 1, 1, tzinfo=UTC))
    >>> (t.antenna, t.rssi, t.count, t.first_seen == t.last_seen, t.quality.value)
    (2, -51.0, 4, True, 'good')
    """
    first = _utc(report.first_seen_utc)
    last = _utc(report.last_seen_utc)
    quality = Quality.GOOD
    if first is None and last is None:
        quality = Quality.UNCERTAIN
        if uptime is not None:
            _observe(uptime, report, received_at)  # the latest time first: the tightest bound
            first = _from_uptime(uptime, report.first_seen_uptime, received_at)
            last = _from_uptime(uptime, report.last_seen_uptime, received_at)
    first = first or last or received_at
    last = last or first
    return TagRead(
        reader_id=reader_id,
        antenna=report.antenna_id or 0,
        epc=report.epc,
        rssi=float(report.peak_rssi) if report.peak_rssi is not None else None,
        first_seen=first,
        last_seen=max(first, last),
        count=max(1, report.tag_seen_count or 1),
        quality=quality,
        received_at=received_at,
    )


def _observe(uptime: ReaderUptime, report: TagReport, received_at: datetime) -> None:
    latest = report.last_seen_uptime or report.first_seen_uptime
    if latest is not None:
        uptime.observe(latest, received_at)


def _from_uptime(uptime: ReaderUptime, us: int | None, received_at: datetime) -> datetime | None:
    return None if us is None else uptime.to_gateway_time(us, received_at)


def records_from_report(
    reader_id: str,
    frame: Frame,
    received_at: datetime,
    source: str,
    uptime: ReaderUptime | None = None,
) -> tuple[Record, ...]:
    """TagReads of an RO_ACCESS_REPORT; what cannot be read becomes a DeadLetter.

    ``uptime`` maps Uptime timestamps (a reader without a set clock); the whole report
    tightens the boot estimate before any of its reads is mapped, so they share one estimate.
    """
    try:
        reports = tag_reports(decode_message(frame))
    except LlrpError as err:
        return (_dead(source, f"undecodable RO_ACCESS_REPORT: {err}", frame.raw, received_at),)
    if uptime is not None:
        for report in reports:
            _observe(uptime, report, received_at)
    out: list[Record] = []
    for report in reports:
        try:
            out.append(tag_read(reader_id, report, received_at, uptime))
        except ValidationError as err:
            raw = report.to_parameter().encode()
            out.append(_dead(source, f"unusable tag report: {err}", raw, received_at))
    return tuple(out)


def _dead(source: str, reason: str, raw: bytes, received_at: datetime) -> DeadLetter:
    return DeadLetter(source=source, reason=reason[:2000], raw=raw, received_at=received_at)


class _PortableLlrp(LLRPClient):  # type: ignore[misc]
    """sllurp's conversation, made to work with readers that read LLRP differently.

    * The ROSpec starts on START_ROSPEC (a Null start trigger) rather than on an Immediate
      trigger at ENABLE_ROSPEC: every reader implements START_ROSPEC, not every one honours
      an Immediate trigger (llrpkit's emulator leaves the ROSpec enabled, and silent).
    * The reset on connect (DELETE_ROSPEC 0) succeeds also when the reader refuses "0 = all"
      with nothing to delete (llrpkit's emulator: M_ParameterError "no ROSpec 0"); sllurp
      would stop there and never start inventory. A ROSpec really left behind still shows,
      as the ADD_ROSPEC that follows is refused.
    """

    def getROSpec(self, force_new: bool = False) -> Any:  # noqa: N802 - sllurp's
        rospec = super().getROSpec(force_new=force_new)
        rospec["ROBoundarySpec"]["ROSpecStartTrigger"]["ROSpecStartTriggerType"] = "Null"
        return rospec

    def startInventory(self, force_regen_rospec: bool = False) -> None:  # noqa: N802
        if self.state == LLRPReaderState.STATE_INVENTORYING:
            return
        rospec = self.getROSpec(force_new=force_regen_rospec)

        def started(_state: object, is_success: bool, *_args: object) -> None:
            if is_success:
                self.setState(LLRPReaderState.STATE_INVENTORYING)

        def enabled(state: object, is_success: bool, *_args: object) -> None:
            if is_success:
                self.send_START_ROSPEC(state, rospec, onCompletion=started)

        def added(state: object, is_success: bool, *_args: object) -> None:
            if is_success:
                self.send_ENABLE_ROSPEC(state, rospec, onCompletion=enabled)

        self.send_ADD_ROSPEC(rospec, onCompletion=added)

    def stopAllROSpecs(self, onCompletion: Any = None) -> None:  # noqa: N802, N803 - sllurp's
        if onCompletion is None:
            super().stopAllROSpecs(onCompletion)
        elif self.disconnecting:
            super().stopAllROSpecs(self._then_close(onCompletion))
        else:

            def reset_done(state: object, _is_success: bool, *args: object) -> None:
                onCompletion(state, True, *args)

            super().stopAllROSpecs(reset_done)

    def _then_close(self, done: Any) -> Any:
        """At shutdown, after DELETE_ROSPEC 0: our own ROSpec by id if the reader refused
        "0 = all", then CLOSE_CONNECTION (the LLRP way to leave; sllurp only drops the socket)."""

        def close(state: object, _is_success: bool, *_args: object) -> None:
            self.sendMessage({"CLOSE_CONNECTION": {}})
            self._deferreds["CLOSE_CONNECTION_RESPONSE"].append(done)

        def deleted_all(state: object, is_success: bool, *args: object) -> None:
            if is_success or not self.rospec:
                close(state, is_success, *args)
                return
            self.sendMessage({"DELETE_ROSPEC": {"ROSpecID": self.rospec["ROSpecID"]}})
            self._deferreds["DELETE_ROSPEC_RESPONSE"].append(close)

        return deleted_all


class _FramedClient(LLRPReaderClient):  # type: ignore[misc]
    """sllurp's client with our framing and report decoding in front of its state machine."""

    link: LlrpLink
    _socket: socket.socket | None
    _host: str
    _port: int
    _socktimeout: float
    _stop_main_loop: threading.Event
    close_lock: threading.Lock

    def _connect_socket(self) -> bool:
        # sllurp's own version leaves the socket unclosed when the connection is refused (a
        # file descriptor leaked per reconnect attempt); create_connection closes it.
        if self._socket:
            raise ReaderConfigurationError("Already connected")
        sock = socket.create_connection((self._host, self._port), timeout=self._socktimeout)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._socket = sock
        return True

    def use_portable_conversation(self) -> None:
        self.llrp = _PortableLlrp(
            self.config,
            transport_tx_write=self.send_data,
            state_change_callback=self._on_llrp_state_changed,
        )

    def send_data(self, data: bytes) -> None:
        # An ERROR_MESSAGE names only the message id it answers: remember what each id was.
        if len(data) >= HEADER_SIZE:
            first, _length, message_id = HEADER.unpack_from(data)
            self.link.sent(message_id, first & 0x3FF)
        super().send_data(data)

    def hard_disconnect(self) -> None:
        # sllurp's version checks then closes self._socket without a lock; our supervisor and
        # the socket thread may both call it, and the loser would crash on None.
        with self.close_lock:
            self._stop_main_loop.set()
            sock, self._socket = self._socket, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def raw_data_received(self, data: bytes) -> None:
        link = self.link
        try:
            frames = link.framer.feed(data)
        except FramingError as err:
            self._dispatch(err.frames)  # the whole frames before the bad header are good data
            link.on_broken_stream(str(err), link.framer.pending)
            self.hard_disconnect()
            return
        self._dispatch(frames)

    def _dispatch(self, frames: tuple[Frame, ...] | list[Frame]) -> None:
        link = self.link
        for frame in frames:
            link.touch()
            if frame.message_type == MessageType.READER_EVENT_NOTIFICATION:
                link.observe_event(frame)
            if frame.message_type == MessageType.RO_ACCESS_REPORT:
                link.deliver_report(frame)
                continue  # sllurp's state machine has no use for reports
            if link.lost_reason is not None or self._stop_main_loop.is_set():
                continue  # this connection is ending: only reports still count
            if frame.message_type == MessageType.ERROR_MESSAGE:
                if link.on_error_message(frame):
                    self.hard_disconnect()
                continue
            if frame.message_type == MessageType.READER_EVENT_NOTIFICATION and link.refused(frame):
                self.hard_disconnect()
                continue
            self._to_state_machine(frame)

    def _to_state_machine(self, frame: Frame) -> None:
        try:
            message = LLRPMessage(msgbytes=frame.raw)
            self.llrp.handleMessage(message)
        except LLRPError as err:
            if frame.message_type == MessageType.GET_READER_CAPABILITIES_RESPONSE:
                # sllurp checks our antennas and power against the reader's capabilities.
                self.link.permanent(f"reader cannot do what is configured: {err}")
                self.hard_disconnect()
                return
            log.warning(
                "reader %s: sllurp refused message type %d: %s",
                self.link.settings.reader_id,
                frame.message_type,
                err,
            )
            self.link.deliver(
                (
                    _dead(
                        self.link.source,
                        f"sllurp refused message: {err}",
                        frame.raw,
                        self.link.clock.now(),
                    ),
                )
            )


class LlrpLink:
    """One connection: the sllurp client, its thread, and the bridge to asyncio."""

    def __init__(
        self,
        settings: LinkSettings,
        loop: asyncio.AbstractEventLoop,
        queue: asyncio.Queue[Any],
        clock: Clock,
        budget: ErrorBudget | None = None,
    ) -> None:
        self.settings = settings
        self.budget = budget or ErrorBudget()
        self.clock = clock
        self.source = f"llrp:{settings.reader_id}"
        self.framer = Framer()
        self.uptime = ReaderUptime()
        """The reader's boot estimate: per connection, since the reader may have rebooted."""
        self.lost = asyncio.Event()
        self.lost_reason: str | None = None
        self.lost_key: str | None = None
        """What kind of failure ``lost_reason`` is: statuses are reported once per kind."""
        self.permanent_error: str | None = None
        self.reached_inventory = False
        self._loop = loop
        self._queue = queue
        self._inventorying = asyncio.Event()
        self._closing = threading.Event()
        self._last = time.monotonic()
        self._waiting_for_room = False
        self._client = _FramedClient(
            settings.host, settings.port, settings.sllurp_config(), settings.connect_timeout
        )
        self._client.link = self
        self._client.close_lock = threading.Lock()
        self._client.use_portable_conversation()
        self._sent: dict[int, int] = {}  # message id -> message type, the latest requests
        self._client.add_state_callback(LLRPReaderState.STATE_INVENTORYING, self._on_inventory)
        self._client.add_disconnected_callback(self._on_disconnected)

    # Called from asyncio ----------------------------------------------------------------

    async def open(self) -> None:
        """Connect the socket and start sllurp's thread (OSError when the reader is away)."""
        connecting = asyncio.ensure_future(asyncio.to_thread(self._client.connect))
        try:
            await asyncio.shield(connecting)
        except asyncio.CancelledError:
            # A thread cannot be cancelled: let connect() finish (it is bounded by the socket
            # timeout), so that close() afterwards stops the socket thread it may have started.
            with contextlib.suppress(OSError, LLRPError):
                await connecting
            raise

    async def wait_inventorying(self) -> None:
        waiters = [asyncio.ensure_future(e.wait()) for e in (self._inventorying, self.lost)]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()

    def silent_for(self) -> float:
        """Seconds since the reader last sent anything (0 while we hold it back)."""
        if self._waiting_for_room:
            return 0.0
        return time.monotonic() - self._last

    async def close(self, *, polite: bool) -> None:
        """Stop the thread and close the socket; idempotent."""
        self._closing.set()
        client = self._client
        if polite and client.is_alive():
            # Best effort: the reader may have gone in the meantime.
            with contextlib.suppress(LLRPError, OSError):
                await asyncio.to_thread(client.disconnect, 1.0)
        client.hard_disconnect()
        await asyncio.to_thread(client.join, 5.0)
        if client.is_alive():
            log.error("reader %s: sllurp thread did not stop", self.settings.reader_id)

    # Called from sllurp's thread -----------------------------------------------------------

    def touch(self) -> None:
        self._last = time.monotonic()

    def sent(self, message_id: int, message_type: int) -> None:
        self._sent[message_id] = message_type
        if len(self._sent) > _SENT_KEPT:
            del self._sent[next(iter(self._sent))]

    def deliver_report(self, frame: Frame) -> None:
        records = records_from_report(
            self.settings.reader_id, frame, self.clock.now(), self.source, self.uptime
        )
        if records:
            self.deliver(records)

    def deliver(self, records: tuple[Record, ...]) -> None:
        """Hand records to asyncio, waiting for room (back-pressure), unless the source closes."""
        future = asyncio.run_coroutine_threadsafe(self._queue.put(records), self._loop)
        self._waiting_for_room = True
        try:
            while True:
                with contextlib.suppress(concurrent.futures.TimeoutError):
                    future.result(_PUT_POLL)
                    break
                if self._closing.is_set():
                    future.cancel()
                    break
        finally:
            self._waiting_for_room = False
            self.touch()

    def on_broken_stream(self, reason: str, pending: bytes) -> None:
        """Dead-letters everything from the bad header on, in chunks, up to a bound."""
        now = self.clock.now()
        # The same broken header on every reconnection (version, type, length alike) is
        # dead-lettered once; the whole frames before it were delivered all the same.
        if not self.budget.admit(b"broken stream:" + pending[:6]):
            self._lose(f"malformed LLRP header: {reason}")
            return
        chunks = [pending[i : i + _DEAD_CHUNK] for i in range(0, len(pending), _DEAD_CHUNK)]
        kept = chunks[:_DEAD_STREAM_LIMIT]
        cut = len(pending) - sum(map(len, kept))
        letters = []
        for i, chunk in enumerate(kept, 1):
            part = f" (part {i} of {len(kept)}, {len(pending)} bytes" + (
                f", the last {cut} not kept)" if cut else ")"
            )
            letters.append(_dead(self.source, f"LLRP stream broken: {reason}{part}", chunk, now))
        if letters:
            self.deliver(tuple(letters))
        self._lose(f"malformed LLRP header: {reason}")

    def on_error_message(self, frame: Frame) -> bool:
        """An ERROR_MESSAGE from the reader; True when it ends the connection (during the
        handshake the reader refuses what sllurp asks, and retrying at once cannot help)."""
        try:
            status = status_of(decode_message(frame))
            text, kind = str(status), status_name(status.code)
        except LlrpError as err:
            text = kind = f"undecodable ERROR_MESSAGE: {err}"
        reason = f"the reader answered with ERROR_MESSAGE: {text}"
        if self._sent.get(frame.message_id) == MessageType.ENABLE_EVENTS_AND_REPORTS:
            # It has no response in LLRP and only releases what a reader holds back on
            # connect; a reader that does not know it holds nothing back (llrpkit's emulator).
            log.info("reader %s ignores ENABLE_EVENTS_AND_REPORTS: %s", self.source, text)
            return False
        if self.budget.admit(frame.body):
            self.deliver((_dead(self.source, reason, frame.raw, self.clock.now()),))
        if self.reached_inventory:
            return False
        # One status per status code: a description that changes on every retry (a message
        # id, a time in it) must not give a status per retry.
        self._lose(reason, key=f"ERROR_MESSAGE {kind}")
        return True

    def observe_event(self, frame: Frame) -> None:
        """A reader event's Uptime tightens the boot estimate (the ConnectionAttemptEvent,
        sent as we connect, gives the first one)."""
        try:
            event = ReaderEvent.from_message(decode_message(frame))
        except LlrpError:
            return  # judged where the event is used
        if event.uptime is not None:
            self.uptime.observe(event.uptime, self.clock.now())

    def refused(self, frame: Frame) -> bool:
        """True when the reader's ConnectionAttemptEvent refuses this connection."""
        try:
            event = ReaderEvent.from_message(decode_message(frame))
        except LlrpError:
            return False  # sllurp's state machine judges it
        why = _CONNECTION_REFUSED.get(event.connection_attempt or 0)
        if why is None:
            return False
        self._lose(f"{why} (ConnectionAttemptEvent status {event.connection_attempt})")
        return True

    def permanent(self, reason: str) -> None:
        self.permanent_error = reason
        self._lose(reason)

    def _on_inventory(self, _client: object, _state: int) -> None:
        self.reached_inventory = True
        self._loop.call_soon_threadsafe(self._inventorying.set)

    def _on_disconnected(self, _client: object) -> None:
        self._lose("connection to the reader lost")

    def _lose(self, reason: str, key: str | None = None) -> None:
        """Ends the link with ``reason``; ``key`` names the failure for one status per kind
        (the reason itself when None)."""

        def mark() -> None:
            if self.lost_reason is None:
                self.lost_reason, self.lost_key = reason, key or reason
            self.lost.set()

        with contextlib.suppress(RuntimeError):  # the loop is already closed at shutdown
            self._loop.call_soon_threadsafe(mark)
