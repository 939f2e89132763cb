"""LLRP source: an RFID reader (dock door) through sllurp, behind our own supervision.

sllurp is threaded and is wrapped here and nowhere else. It runs the LLRP conversation
(capabilities, config, ROSpec, keepalive acknowledgements) in one socket thread per connection;
this module starts that thread, joins it, and talks to asyncio through one bounded queue:

* Framing and tag reports are ours: the socket thread's byte stream goes through
  :class:`protocols.llrp.Framer` (several messages per read, one message over several reads)
  and RO_ACCESS_REPORTs are decoded by :mod:`protocols.llrp`, not by sllurp. One malformed
  message costs only itself (it leaves as a ``DeadLetter`` with its bytes), where sllurp's own
  framer would drop the rest of the read. Other messages are handed to sllurp's state machine.
* Hand-off to asyncio: the socket thread puts each report's records into an ``asyncio.Queue`` of
  ``queue_size`` items and waits until there is room. Overflow policy: back-pressure. The
  thread stops reading the socket, TCP pushes back on the reader, which buffers; nothing is
  dropped. The watchdog does not count that wait as silence.
* The ROSpec asks explicitly for antenna id, peak RSSI, first and last seen timestamps and tag
  seen count, reported every ``report_every_n_tags`` tags or ``report_timeout``.

Supervision (sllurp's own reconnect is off): a keepalive watchdog tears the connection down when
nothing (keepalive or report) arrived for ``missed_keepalives`` keepalive intervals, or when the
handshake does not reach inventory within ``connect_timeout``; reconnection waits a jittered
exponential backoff. Reader state changes leave as ``DeviceStatus`` (``llrp_reader``): online
when inventorying, offline with the reason when the connection is lost; the same failure on
every retry gives one record. A reader that answers the handshake with ERROR_MESSAGE, or refuses
the connection because another client is connected (ConnectionAttemptEvent), ends the attempt
at once with the reader's reason (one status per status code, whatever its description); its
ERROR_MESSAGE is dead-lettered once, not per retry. A malformed header costs the connection,
never the whole frames read before it; what follows it is dead-lettered in full (64 KiB chunks,
at most 1 MiB).

Exception tree (from ``edge.sources.base``)::

    SourceError
    ├── TransientSourceError    not raised: connection loss is retried here with backoff
    └── PermanentSourceError    the reader cannot do what the configuration asks (antennas,
                                transmit power): retrying cannot help
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from datetime import timedelta
from types import TracebackType
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from edge.backoff import backoff_delay
from edge.clock import Clock, SystemClock
from edge.sources.base import PermanentSourceError
from edge.sources.llrp_link import ErrorBudget, LinkSettings, LlrpLink
from protocols.records import DeviceId, DeviceState, DeviceStatus, Record

log = logging.getLogger(__name__)

_Delta = Annotated[timedelta, Field(gt=timedelta(0))]


class LlrpReaderConfig(BaseModel):
    """One LLRP reader and how to run it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    reader_id: DeviceId
    host: str
    port: int = Field(default=5084, ge=1, le=65535)
    antennas: tuple[Annotated[int, Field(ge=1, le=64)], ...] = (1, 2)
    tx_power_index: int = Field(
        default=0, ge=0, description="index in the reader's power table; 0 = maximum power"
    )
    session: int = Field(default=2, ge=0, le=3, description="Gen2 session")
    tag_population: int = Field(default=32, ge=1, le=65535)
    report_every_n_tags: int = Field(default=50, ge=1, le=65535)
    report_timeout: _Delta = timedelta(milliseconds=250)
    keepalive_interval: _Delta = timedelta(seconds=10)
    missed_keepalives: int = Field(default=3, ge=1)
    connect_timeout: _Delta = timedelta(seconds=10)
    backoff_initial: _Delta = timedelta(seconds=1)
    backoff_max: _Delta = timedelta(seconds=60)
    queue_size: int = Field(default=64, ge=1, description="reports waiting for the consumer")

    @model_validator(mode="after")
    def _consistent(self) -> LlrpReaderConfig:
        if len(set(self.antennas)) != len(self.antennas) or not self.antennas:
            raise ValueError("antennas must be a non-empty list of distinct ids")
        if self.backoff_max < self.backoff_initial:
            raise ValueError("backoff_max must not be below backoff_initial")
        if self.keepalive_interval < timedelta(milliseconds=1):
            raise ValueError("keepalive_interval must be at least 1 ms")
        return self


class LlrpSource:
    """``async with LlrpSource(cfg) as src: async for records in src: ...``."""

    def __init__(self, config: LlrpReaderConfig, clock: Clock | None = None) -> None:
        self.config = config
        self._clock = clock or SystemClock()
        self._queue: asyncio.Queue[tuple[Record, ...] | BaseException] = asyncio.Queue(
            config.queue_size
        )
        self._rng = random.Random()  # noqa: S311 - jitter, not security
        self._task: asyncio.Task[None] | None = None
        self._link: LlrpLink | None = None
        self._stopping = False
        self._offline_reasons: set[str] = set()  # reported since the last time online
        self._budget = ErrorBudget()
        self.connections = 0
        """How many times the handshake reached inventory (tests and health)."""

    @property
    def name(self) -> str:
        return f"llrp:{self.config.reader_id}"

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self._supervise(), name=self.name)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._link is not None:  # cancelled half-way through closing it
            await self._link.close(polite=False)
            self._link = None

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> tuple[Record, ...]:
        item = await self._queue.get()
        if isinstance(item, BaseException):
            raise item
        return item

    async def _status(self, state: DeviceState, detail: str, key: str | None = None) -> None:
        """``key`` names the failure (``detail`` when None): one record per kind of failure."""
        kind = key or detail
        if state is DeviceState.ONLINE:
            self._offline_reasons.clear()
        elif kind in self._offline_reasons:
            return  # the same failure on every retry (or alternating ones): one record each
        else:
            self._offline_reasons.add(kind)
        status = DeviceStatus(
            device_id=self.config.reader_id,
            device_type="llrp_reader",
            state=state,
            detail=detail[:2000],
            time=self._clock.now(),
        )
        await self._queue.put((status,))

    def _settings(self) -> LinkSettings:
        c = self.config
        return LinkSettings(
            reader_id=c.reader_id,
            host=c.host,
            port=c.port,
            antennas=c.antennas,
            tx_power_index=c.tx_power_index,
            session=c.session,
            tag_population=c.tag_population,
            report_every_n_tags=c.report_every_n_tags,
            report_timeout_ms=max(1, round(c.report_timeout.total_seconds() * 1000)),
            keepalive_ms=max(1, round(c.keepalive_interval.total_seconds() * 1000)),
            connect_timeout=c.connect_timeout.total_seconds(),
        )

    async def _supervise(self) -> None:
        attempt = 0
        loop = asyncio.get_running_loop()
        while True:
            link = LlrpLink(self._settings(), loop, self._queue, self._clock, self._budget)
            self._link = link
            try:
                reason = await self._run_once(link)
                attempt = 0 if link.reached_inventory else attempt
            finally:
                # On shutdown, stop the reader's inventory (DELETE_ACCESSSPEC/ROSPEC) first.
                polite = self._stopping and link.reached_inventory and link.lost_reason is None
                await link.close(polite=polite)
                self._link = None
            if link.permanent_error is not None:
                await self._status(DeviceState.OFFLINE, link.permanent_error)
                await self._queue.put(PermanentSourceError(link.permanent_error))
                return
            key = link.lost_key if reason == link.lost_reason else None
            await self._status(DeviceState.OFFLINE, reason, key)
            delay = backoff_delay(
                attempt, self.config.backoff_initial, self.config.backoff_max, self._rng
            )
            attempt += 1
            log.info("reader %s: %s; reconnecting in %.2f s", self.config.reader_id, reason, delay)
            await self._clock.sleep(delay)

    async def _run_once(self, link: LlrpLink) -> str:
        """Connect, reach inventory and watch the link; returns why it ended."""
        c = self.config
        try:
            await link.open()
        except OSError as err:
            return f"cannot connect to {c.host}:{c.port}: {err}"
        try:
            async with asyncio.timeout(c.connect_timeout.total_seconds()):
                await link.wait_inventorying()
        except TimeoutError:
            return link.lost_reason or "handshake did not reach inventory in time"
        if link.lost_reason is not None:
            return link.lost_reason
        self.connections += 1
        await self._status(DeviceState.ONLINE, f"inventorying on antennas {list(c.antennas)}")
        return await self._watch(link)

    async def _watch(self, link: LlrpLink) -> str:
        interval = self.config.keepalive_interval.total_seconds()
        limit = interval * self.config.missed_keepalives
        period = min(0.25, limit / 4)
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(period):
                    await link.lost.wait()
            if link.lost_reason is not None:
                return link.lost_reason
            silent = link.silent_for()
            if silent > limit:
                return f"keepalive watchdog: nothing from the reader for {silent:.1f} s"
