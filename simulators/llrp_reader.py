"""A simulated LLRP reader over TCP (default port 5084), driven by a scene of moving tags.

It speaks LLRP 1.0.1 the way a fixed reader does, enough for the real sllurp client:

- LLRP 1.0.1 only: a message of another version (an LLRP 1.1 client) gets ERROR_MESSAGE
  M_UnsupportedVersion; GET_SUPPORTED_VERSION is answered (current and supported: 1.0.1) and
  SET_PROTOCOL_VERSION accepts 1 only, so that LLRP 1.1 clients negotiate down;
- on accept, a READER_EVENT_NOTIFICATION with a ConnectionAttemptEvent (0 = success; a second
  client while one is connected gets 2 = "a client-initiated connection already exists" and is
  closed, as an Impinj reader does);
- GET_READER_CAPABILITIES and GET_READER_CONFIG honouring RequestedData and AntennaID,
  SET_READER_CONFIG (KeepaliveSpec, ROReportSpec, event notifications, EventsAndReports),
  ENABLE_EVENTS_AND_REPORTS (no reply), ADD/ENABLE/START/STOP/DISABLE/DELETE_ROSPEC and
  GET_ROSPECS, DELETE_ACCESSSPEC / GET_ACCESSSPECS (id 0 = all; AccessSpecs are not supported),
  GET_REPORT, KEEPALIVE (and KEEPALIVE_ACK), CLOSE_CONNECTION; anything else gets an
  ERROR_MESSAGE, a body it cannot decode gets ERROR_MESSAGE with a parameter error;
- an ROSpec with an immediate start trigger starts inventory when enabled, without START_ROSPEC;
  one without ROReportSpec reports with the reader's default (or configured) report spec;
  GET_ROSPECS reports each ROSpec's current state (Disabled, Inactive, Active);
  inventory and reports follow :mod:`simulators.llrp_inventory`.

Time: the scene runs ``speed`` times faster than the wall clock (reported timestamps are scene
time mapped onto ``epoch``); keepalives run on the wall clock. With ``paced=False`` rounds run
back to back as fast as the client takes them (benchmarks).

Clock: ``clock="uptime"`` makes a reader whose clock was never set (no NTP at the site): tag
reports carry First/LastSeenTimestampUptime and events carry Uptime, microseconds since the
reader booted (``uptime_at_start`` before scene t=0), and the capabilities say it has no UTC
clock. :meth:`~.reboot` drops the connections and restarts the uptime from 0.
:meth:`~.hold_reports` / :meth:`~.release_reports` hold tag reports back and then send them all
at once, as a reader buffering through a network blip does.

Faults on demand: :meth:`LlrpReaderSimulator.drop_connections` (TCP RST),
:meth:`~.close_connections` (ConnectionCloseEvent, then FIN), :meth:`~.go_silent` /
:meth:`~.resume` (no keepalives, no reports, no answers, connection kept), and
:meth:`~.send_malformed` (a frame whose body cannot be decoded, or a broken header).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from types import TracebackType
from typing import Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from protocols.llrp.errors import DecodeError, FramingError
from protocols.llrp.frame import Frame, Framer, encode_frame
from protocols.llrp.messages import Message, MessageType, decode_message
from protocols.llrp.reports import (
    LlrpStatus,
    ReaderEvent,
    StatusCode,
    TagReport,
    response,
    ro_access_report,
)
from simulators.llrp_device import DeviceProfile
from simulators.llrp_inventory import InventoryRun, as_utc
from simulators.llrp_session import RoSpecTable, handle_request
from simulators.scene import Scene

log = logging.getLogger(__name__)


class MalformedKind(StrEnum):
    BODY = "body"  # a valid header, an RO_ACCESS_REPORT body that cannot be decoded
    HEADER = "header"  # a header with a bad version and length: the stream is lost
    AFTER_REPORT = "after-report"  # a good one-tag report and a bad header in one TCP write


MARKER_EPC = "300833B2DDD9014000C0FFEE"
"""The tag of the good report sent just before a bad header (``MalformedKind.AFTER_REPORT``)."""


class SimulatorConfig(BaseModel):
    """Typed configuration of the simulated reader."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=5084, ge=0, le=65535)
    speed: float = Field(default=1.0, gt=0.0, description="scene seconds per wall second")
    paced: bool = True
    round_time: timedelta = Field(default=timedelta(milliseconds=20), gt=timedelta(0))
    epoch: AwareDatetime | None = Field(default=None, description="UTC time of scene t=0")
    antennas: int = Field(default=4, ge=1, le=32)
    record_sent: bool = Field(default=False, description="keep every TagReport sent (tests)")
    clock: Literal["utc", "uptime"] = Field(
        default="utc", description="utc: a set clock; uptime: time since boot only (no NTP)"
    )
    uptime_at_start: timedelta = Field(
        default=timedelta(0), ge=timedelta(0), description="how long the reader was up at t=0"
    )


class LlrpReaderSimulator:
    """``async with LlrpReaderSimulator(scene, config) as sim:`` serves until the block ends."""

    def __init__(self, scene: Scene, config: SimulatorConfig | None = None) -> None:
        self.scene = scene
        self.config = config or SimulatorConfig()
        self.profile = DeviceProfile(
            antennas=self.config.antennas, utc_clock=self.config.clock == "utc"
        )
        self.silent = False
        self.holding = False
        self.sent: list[TagReport] = []
        self.sent_utc: list[TagReport] = []
        """With ``record_sent``: every TagReport sent, timed as a reader with a set clock would
        have timed it (the truth an Uptime reader's times must be mapped back to)."""
        self.reads = 0
        self.reports = 0
        self.requests: Counter[str] = Counter()
        """Messages received from clients, by name."""
        self._sessions: set[_Session] = set()
        self._server: asyncio.Server | None = None
        self._t0 = 0.0
        self._cursor = 0.0
        self._epoch = self.config.epoch or datetime.now(UTC)
        self._boot = -self.config.uptime_at_start.total_seconds()  # scene seconds

    @property
    def port(self) -> int:
        """The bound port (useful with ``port=0``)."""
        if self._server is None:
            raise RuntimeError("simulator not started")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def epoch_us(self) -> int:
        return int(self._epoch.timestamp() * 1_000_000)

    @property
    def boot_us(self) -> int | None:
        """The UTC instant (µs) the reader booted, when it reports Uptime; else None."""
        if self.config.clock == "utc":
            return None
        return self.epoch_us + round(self._boot * 1_000_000)

    def event_time(self) -> ReaderEvent:
        """A ReaderEvent stamped now: UTCTimestamp, or Uptime for a reader without a clock."""
        if self.boot_us is None:
            return ReaderEvent(utc=int(datetime.now(UTC).timestamp() * 1_000_000))
        return ReaderEvent(uptime=self.epoch_us + round(self.now() * 1_000_000) - self.boot_us)

    def now(self) -> float:
        """Current scene time (seconds)."""
        if not self.config.paced:
            return self._cursor
        return (asyncio.get_running_loop().time() - self._t0) * self.config.speed

    def scene_datetime(self, t: float) -> datetime:
        """The UTC time the reader reports for scene time ``t``."""
        return self._epoch + timedelta(seconds=t)

    @property
    def connected(self) -> int:
        return sum(1 for s in self._sessions if s.accepted)

    async def __aenter__(self) -> Self:
        self._t0 = asyncio.get_running_loop().time()
        self._server = await asyncio.start_server(self._accept, self.config.host, self.config.port)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._server.close()
        await self.drop_connections()
        if self._server is not None:
            await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = _Session(self, reader, writer)
        busy = any(s.accepted for s in self._sessions)
        self._sessions.add(session)
        try:
            await session.run(reject=busy)
        finally:
            self._sessions.discard(session)

    # Faults -----------------------------------------------------------------------------

    async def drop_connections(self) -> None:
        """Abort every client connection with a TCP RST (no CLOSE_CONNECTION, no FIN), as a
        reader that loses power or a firewall that resets the flow does."""
        sessions = list(self._sessions)
        for session in sessions:
            session.abort()
        for session in sessions:
            await session.closed.wait()

    async def close_connections(self) -> None:
        """Close every client connection in order: a ConnectionCloseEvent, then FIN, as a
        reader does when it shuts down or is rebooted from its web page."""
        sessions = [s for s in self._sessions if s.accepted]
        for session in sessions:
            await session.close_orderly()
        for session in sessions:
            await session.closed.wait()

    async def reboot(self) -> None:
        """Drop every connection (TCP RST) and boot again: the uptime restarts from 0."""
        await self.drop_connections()
        self._boot = self.now()

    def hold_reports(self) -> None:
        """Keep tag reports back (inventory goes on) until :meth:`release_reports`."""
        self.holding = True

    async def release_reports(self) -> None:
        """Send every report held back, in order, at once."""
        self.holding = False
        for session in list(self._sessions):
            await session.send_held()

    def go_silent(self) -> None:
        """Stop sending anything (keepalives, reports, answers); keep the connections open."""
        self.silent = True

    def resume(self) -> None:
        self.silent = False

    async def send_malformed(self, kind: MalformedKind = MalformedKind.BODY) -> int:
        """Send one malformed frame to every connected client; returns how many got one."""
        sent = 0
        for session in list(self._sessions):
            if session.accepted:
                await session.send_raw(_malformed(kind, session.next_id()))
                sent += 1
        return sent

    # Used by sessions ---------------------------------------------------------------------

    def wall_delay(self, t: float) -> float:
        """Seconds until the wall clock reaches scene time ``t`` (negative when late)."""
        return t / self.config.speed - (asyncio.get_running_loop().time() - self._t0)

    def advance_cursor(self, t: float) -> None:
        self._cursor = max(self._cursor, t)

    def record(self, reports: list[TagReport], reads: int) -> None:
        self.reads += reads
        if reports:
            self.reports += 1

    def record_sent(self, reports: list[TagReport], boot_us: int | None) -> None:
        if self.config.record_sent:
            self.sent.extend(reports)
            self.sent_utc.extend(r if boot_us is None else as_utc(r, boot_us) for r in reports)


def _malformed(kind: MalformedKind, message_id: int) -> bytes:
    if kind is MalformedKind.HEADER:
        # Version 0 and a length shorter than a header: no framer can go on after this.
        return struct.pack(">HII", MessageType.RO_ACCESS_REPORT, 4, message_id)
    if kind is MalformedKind.AFTER_REPORT:
        now_us = int(datetime.now(UTC).timestamp() * 1_000_000)
        tag = TagReport(
            epc=MARKER_EPC,
            antenna_id=1,
            peak_rssi=-50,
            first_seen_utc=now_us,
            last_seen_utc=now_us,
            tag_seen_count=1,
        )
        report = ro_access_report(message_id, [tag]).encode()
        return report + _malformed(MalformedKind.HEADER, message_id + 1) + b"\xde\xad" * 16
    # A TagReportData whose length runs past the end of the message.
    return encode_frame(MessageType.RO_ACCESS_REPORT, message_id, bytes.fromhex("00f000ff8d00"))


class _Session:
    """One client connection: its ROSpecs, keepalive timer and inventory."""

    def __init__(
        self, sim: LlrpReaderSimulator, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.sim = sim
        self.reader = reader
        self.writer = writer
        self.accepted = False
        self.table = RoSpecTable(sim.scene, sim.profile)
        self._id = 0
        self._config_changed = asyncio.Event()
        self._specs_changed = asyncio.Event()
        self._lock = asyncio.Lock()
        # Reports held back (LlrpReaderSimulator.hold_reports), with the boot they count from.
        self._held: list[tuple[list[TagReport], int | None]] = []
        self.closed = asyncio.Event()

    def next_id(self) -> int:
        self._id = (self._id + 1) & 0xFFFFFFFF
        return self._id

    def abort(self) -> None:
        sock = self.writer.get_extra_info("socket")
        if sock is not None:
            # SO_LINGER with a zero timeout: close() sends RST instead of FIN.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()

    async def close_orderly(self) -> None:
        event = replace(self.sim.event_time(), connection_close=True)
        with contextlib.suppress(ConnectionError, OSError):
            await self.send(event.to_message(0))
        self.writer.close()

    async def send_raw(self, data: bytes) -> None:
        # One writer at a time, so that frames from the tasks never interleave.
        async with self._lock:
            self.writer.write(data)
            await self.writer.drain()

    async def send(self, message: Message) -> None:
        await self.send_raw(message.encode())

    async def send_report(self, reports: list[TagReport], boot_us: int | None) -> None:
        self._held.append((reports, boot_us))
        if not self.sim.holding:
            await self.send_held()

    async def send_held(self) -> None:
        held, self._held = self._held, []
        if not held:
            return
        data = b"".join(ro_access_report(self.next_id(), r).encode() for r, _ in held)
        for reports, boot_us in held:
            self.sim.record_sent(reports, boot_us)
        await self.send_raw(data)

    async def run(self, *, reject: bool) -> None:
        try:
            event = replace(self.sim.event_time(), connection_attempt=2 if reject else 0)
            await self.send(event.to_message(0))
            if reject:
                return
            self.accepted = True
            async with asyncio.TaskGroup() as tg:
                keepalives = tg.create_task(self._keepalives())
                inventory = tg.create_task(self._inventory())
                await self._serve()
                keepalives.cancel()
                inventory.cancel()
        except* (ConnectionError, OSError, asyncio.IncompleteReadError) as group:
            log.info("LLRP client gone: %s", group.exceptions[0])
        finally:
            self.accepted = False
            self.writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await self.writer.wait_closed()
            self.closed.set()

    async def _serve(self) -> None:
        # Any version is framed, so that an LLRP 1.1 client gets M_UnsupportedVersion.
        framer = Framer(versions=None)
        while True:
            data = await self.reader.read(65536)
            if not data:
                return
            try:
                frames = framer.feed(data)
            except FramingError as err:
                log.warning("LLRP client sent a malformed header, closing: %s", err)
                return
            for frame in frames:
                if await self._handle(frame):
                    return

    async def _handle(self, frame: Frame) -> bool:
        """Answer one request; True when the connection must close."""
        close = False
        reply: Message | None
        try:
            message = decode_message(frame)
        except DecodeError as err:
            status = LlrpStatus(StatusCode.PARAMETER_ERROR, str(err)[:200])
            reply = response(MessageType.ERROR_MESSAGE, frame.message_id, status)
        else:
            self.sim.requests[message.name] += 1
            reply, close = handle_request(self.table, message)
        final = self.table.take_final_reports()  # an ROSpec this command ended
        if final and not self.sim.silent:
            self.sim.record(final, 0)
            await self.send_report(final, self.sim.boot_us)
        if reply is not None and not self.sim.silent:
            await self.send(reply)
        self._config_changed.set()
        self._specs_changed.set()
        return close

    async def _keepalives(self) -> None:
        while True:
            interval = self.table.keepalive_interval()
            self._config_changed.clear()
            try:
                async with asyncio.timeout(interval):
                    await self._config_changed.wait()
                continue  # the configuration changed: read the interval again
            except TimeoutError:
                pass
            if not self.sim.silent:
                await self.send(Message(MessageType.KEEPALIVE, self.next_id()))

    async def _inventory(self) -> None:
        while True:
            run = self.table.active_run(self.sim.epoch_us, self.sim.boot_us)
            if run is None or self.sim.silent:
                self._specs_changed.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.05):
                        await self._specs_changed.wait()
                continue
            await self._run_rounds(run)

    async def _run_rounds(self, run: InventoryRun) -> None:
        sim = self.sim
        round_s = sim.config.round_time.total_seconds()
        t = sim.now()
        rounds = 0
        while self.table.is_running(run) and not sim.silent:
            step = run.step(t)
            reports = step.reports
            if self.table.pending_report:  # GET_REPORT
                self.table.pending_report = False
                reports = reports + run.flush()
            sim.record(reports, step.reads)
            # "Upon N TagReportData": at most N per RO_ACCESS_REPORT (a round may read more).
            n = run.spec.report.n if run.spec.report and run.spec.report.n else len(reports)
            for i in range(0, len(reports), max(n, 1)):
                await self.send_report(reports[i : i + n], run.boot_us)
            if step.done:
                self.table.finished(run)
                break
            t += round_s
            rounds += 1
            if sim.config.paced:
                await asyncio.sleep(max(0.0, sim.wall_delay(t)))
            else:
                sim.advance_cursor(t)
                if rounds % 16 == 0:
                    await asyncio.sleep(0)
