"""The edge agent's supervisor: sources → outbox → uplink, in one ``asyncio.TaskGroup``.

Each configured source runs in its own pump task: it enters the source, shows every tuple the
source yields to the local alarms (before and independently of the outbox: the watch of the
fridges never waits on a full disk or a full outbox), commits the tuple to the outbox *before*
asking for the next one (so the source acknowledges its device or broker only for what is on
disk), and feeds it to the dock doors. A source that fails with ``TransientSourceError`` (or with
an unexpected error: a bug in one adapter must not stop the others) is restarted after a jittered
exponential backoff, which starts again from ``restart_initial`` only after a life of
``restart_reset_after`` (a source that crashes on every redelivered message backs off, it does
not restart every second); a ``PermanentSourceError`` (configuration, credentials) stops that
source, loudly, with an alarm. The other sources never notice. With ``overflow: raise`` a full
outbox closes the source without acknowledging the tuple in hand (the device or broker keeps it)
and restarts it once there is room. Any other outbox error is fatal: the agent stops, and its
supervisor (systemd, balena) restarts it on the same file.

Committed tag reads are fed to the dock doors (``edge.portal``); the passages they close are
committed in turn. Doors are advanced on each reader's own clock (its latest report time plus
the monotonic time since), so a passage closes when no read follows it. An open passage lives in
memory only: after a crash its tag reads are in the outbox and reach the cloud, the passage not.

Beside the pumps run the uplink, the local alarm writer, the clock watch, the outbox watch (full,
disk full, high water, time to full), the door ticker and the health server. ``stop`` (SIGTERM,
SIGINT) stops the sources first and gives them, the commits in flight and the last passages
``supervision.stop_grace`` in all (a commit still waiting for room after that is abandoned: its
source was not resumed, so its device still holds the data); then the uplink gets
``supervision.shutdown_flush`` to send what is committed, and everything closes. What is not
sent stays in the outbox for the next start. A stop therefore takes at most about
``stop_grace + shutdown_flush``, whatever the state of the outbox and the cloud.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx

from edge.alarms import LocalAlarms, MqttAlarmPublisher
from edge.backoff import backoff_delay
from edge.browse_requests import BrowseWorker
from edge.clock import Clock, ClockWatch, SystemClock
from edge.config import EdgeConfig
from edge.door_feed import DoorListClient, DoorListFeed
from edge.door_guard import DoorGuard
from edge.health import HealthServer, Snapshot, SourceHealth
from edge.helper_tasks import kept_running
from edge.lag import CloudLag
from edge.notify import LocalNotifier
from edge.outbox import (
    Outbox,
    OutboxClosedError,
    OutboxError,
    OutboxFullError,
    filling_soon,
    open_outbox,
)
from edge.portal import Portals
from edge.remote_config import ConfigClient, RemoteConfig, RemoteState, starting_config
from edge.sources.base import PermanentSourceError, Source, TransientSourceError
from edge.uplink import Uplink
from protocols.records import PortalPassage, Record, TagRead

log = logging.getLogger(__name__)

_CLEAR_AFTER = 3


@dataclass(frozen=True)
class SourceSpec:
    """A named way to build a fresh source (one per start or restart).

    Two specs are equal when their name and ``config`` are: on a new configuration
    (``Agent.reconfigure``) a source whose spec is unchanged keeps running.
    """

    name: str
    factory: Callable[[], Source] = field(compare=False)
    config: object = None
    """The source's own configuration (a frozen model), compared on reconfiguration."""


@dataclass
class _Pump:
    spec: SourceSpec
    task: asyncio.Task[None]
    stop: asyncio.Event


class Agent:
    """Wires the parts; ``run(stop)`` returns once ``stop`` is set and shutdown is complete."""

    def __init__(
        self,
        config: EdgeConfig,
        *,
        outbox: Outbox,
        uplink: Uplink,
        alarms: LocalAlarms,
        sources: Sequence[SourceSpec],
        clock: Clock,
        lag: CloudLag | None = None,
        door_guard: DoorGuard | None = None,
    ) -> None:
        self._config = config
        self._door_guard = door_guard
        self._outbox = outbox
        self._uplink = uplink
        self._alarms = alarms
        self._lag = lag or CloudLag(clock, outbox.stats)
        self._specs = list(sources)
        self._clock = clock
        self._health = {spec.name: SourceHealth(spec.name) for spec in self._specs}
        self._pumps: dict[str, _Pump] = {}
        self._group: asyncio.TaskGroup | None = None
        self._reconfiguring = asyncio.Lock()
        self._clock_watch = ClockWatch(config.gateway_id, clock, config.clock.max_jump)
        self._in_flight: set[asyncio.Task[int]] = set()
        self._rng = random.Random()  # noqa: S311 - jitter, not cryptography
        self._portals = Portals(config.doors)
        self._reader_clocks: dict[str, tuple[datetime, float]] = {}
        """Per reader: its latest reader time and the monotonic time it was seen at."""
        self._stopping = False
        self._quiet: dict[str, int] = {}
        """Outbox alarms: checks in a row that found the condition gone."""
        self._stop_sources = asyncio.Event()
        self.ready = asyncio.Event()
        """Set once every task runs (and the health server listens)."""
        self.door_feed: DoorListFeed | None = None
        """The site's door list for the outbound doors' alarm, when ``door_guard`` is set."""
        self.remote: RemoteConfig | None = None
        """The configuration from the cloud, when the agent takes it from there."""
        self.health_server: HealthServer | None = None
        if config.health.enabled:
            token = config.health.token
            self.health_server = HealthServer(
                config.health.host,
                config.health.port,
                self.snapshot,
                None if token is None else token.get_secret_value(),
            )

    @property
    def has_doors(self) -> bool:
        """Whether the running configuration has dock doors (the door list is wanted)."""
        return bool(self._config.doors)

    def snapshot(self) -> Snapshot:
        return Snapshot(
            gateway_id=self._config.gateway_id,
            now=self._clock.now(),
            stopping=self._stopping,
            sources=tuple(self._health.values()),
            outbox=self._outbox.stats(),
            uplink=self._uplink.status,
            unreachable_seconds=self._uplink.unreachable_for().total_seconds(),
            alarms=self._alarms.active,
            clock_jumps=len(self._clock_watch.jumps),
            behind_seconds=self._lag.oldest_unacknowledged().total_seconds(),
        )

    async def run(self, stop: asyncio.Event) -> None:
        if self.health_server is not None:
            await self.health_server.start()
        async with asyncio.TaskGroup() as group:
            self._group = group
            for spec in self._specs:
                self._start_pump(spec)
            uplink = group.create_task(self._uplink.run(), name="uplink")
            helpers = [
                group.create_task(self._alarms.run(self._commit), name="alarms"),
                group.create_task(
                    self._clock_watch.run(self._config.clock.check_interval, self._commit),
                    name="clock",
                ),
                group.create_task(self._watch_outbox(), name="outbox-watch"),
                group.create_task(self._advance_portals(), name="portals"),
            ]
            if self.health_server is not None:
                helpers.append(group.create_task(self.health_server.serve(), name="health"))
            self.ready.set()
            await stop.wait()
            log.info("stopping: sources first, then flushing the outbox")
            self._stopping = True
            self._stop_sources.set()
            async with self._reconfiguring:  # a reconfiguration in progress finishes first
                for pump in self._pumps.values():
                    pump.stop.set()
                await self._stop_pumps([pump.task for pump in self._pumps.values()])
            await _cancel([uplink])
            await self._flush()
            await _cancel(helpers)
        log.info("stopped; %d record(s) left in the outbox", self._outbox.stats().records)

    def _start_pump(self, spec: SourceSpec) -> None:
        assert self._group is not None  # called from run(), inside its task group
        stop = asyncio.Event()
        self._health[spec.name] = SourceHealth(spec.name)
        task = self._group.create_task(self._pump(spec, stop), name=spec.name)
        self._pumps[spec.name] = _Pump(spec, task, stop)

    async def reconfigure(self, config: EdgeConfig, specs: Sequence[SourceSpec]) -> list[str]:
        """Runs ``config`` from now on; returns the names of the sources stopped or started.

        A source whose spec is unchanged keeps running (its connection, its session, its
        subscriptions); a changed one is stopped (as on shutdown, within ``stop_grace``) and
        started again with its new settings; removed ones stop, new ones start. Doors whose
        configuration changed close their open passages first. The caller has validated
        ``config``: this does not refuse anything.
        """
        async with self._reconfiguring:
            if self._stopping or self._group is None:
                return []
            wanted = {spec.name: spec for spec in specs}
            retired = [n for n, pump in self._pumps.items() if wanted.get(n) != pump.spec]
            grace = config.supervision.stop_grace.total_seconds()
            for name in retired:
                pump = self._pumps.pop(name)
                pump.stop.set()
                _, stuck = await asyncio.wait({pump.task}, timeout=grace)
                await _cancel(list(stuck))
                self._health.pop(name, None)
            if config.doors != self._config.doors:
                passages = tuple(self._portals.flush())
                if passages:
                    await self._judge(passages)
                    await self._commit_unless_stopped(passages)
                self._portals = Portals(config.doors)
            if config.alarms != self._config.alarms:
                self._alarms.reconfigure(config.alarms)
            self._config = config
            started = [spec for name, spec in wanted.items() if name not in self._pumps]
            for spec in started:
                self._start_pump(spec)
            self._specs = list(specs)
            changed = sorted(set(retired) | {spec.name for spec in started})
            log.info("configuration applied; sources restarted or changed: %s", changed or "none")
            return changed

    async def _stop_pumps(self, pumps: list[asyncio.Task[None]]) -> None:
        """Within ``stop_grace``: sources, commits in flight, then the open passages.

        Each pump stops between tuples, after resuming its source once more so the source
        acknowledges what was committed; one stuck (outbox full, disk full) is cancelled, and
        a commit still waiting for room is left to fail when the outbox closes.
        """
        grace = self._config.supervision.stop_grace.total_seconds()
        deadline = self._clock.monotonic() + grace
        if pumps:
            _, stuck = await asyncio.wait(pumps, timeout=grace)
            await _cancel(list(stuck))
        left = max(0.0, deadline - self._clock.monotonic())
        if self._in_flight:
            _, waiting = await asyncio.wait(set(self._in_flight), timeout=left)
            if waiting:
                log.warning("stop: %d commit(s) still waiting for room, abandoned", len(waiting))
        passages = tuple(self._portals.flush())  # close passages still open at the doors
        if not passages:
            return
        await self._judge(passages)
        try:
            async with asyncio.timeout(max(0.1, deadline - self._clock.monotonic())):
                await self._commit(passages, wait_for_room=False)
        except (TimeoutError, OutboxFullError):
            log.warning("stop: %d open passage(s) not committed (outbox full)", len(passages))

    async def _commit_unless_stopped(self, records: tuple[Record, ...]) -> None:
        """Commits, waiting for room only until the agent stops.

        A reconfiguration holds the lock the stop waits for: a commit waiting for room in a
        full outbox must not hold the stop forever. At stop the append stays in flight and
        gets what is left of ``stop_grace``, like the pumps' (then it is abandoned).
        """
        commit = asyncio.ensure_future(self._commit(records))
        stop = asyncio.ensure_future(self._stop_sources.wait())
        try:
            await asyncio.wait({commit, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
        if not commit.done():
            log.warning("stop: %d passage(s) closed by a reconfiguration still wait for room",
                        len(records))  # fmt: skip
            await _cancel([commit])
            return
        try:
            commit.result()
        except OutboxFullError:  # overflow raise, and the agent is stopping
            log.warning("stop: %d passage(s) not committed (outbox full)", len(records))

    async def _commit(self, records: tuple[Record, ...], *, wait_for_room: bool = True) -> int:
        """Appends durably; a cancelled caller does not interrupt a commit in progress.

        With ``overflow: raise`` a full outbox raises ``OutboxFullError``; the agent's own
        records (alarms, clock, passages) then wait for room instead (``wait_for_room``).
        """
        while True:
            try:
                last = await self._commit_once(records)
            except OutboxFullError:
                if not wait_for_room or self._stopping:
                    raise
                await self._clock.sleep(self._config.outbox.watch_interval.total_seconds())
                continue
            self._lag.committed(last, records)
            return last

    async def _commit_once(self, records: tuple[Record, ...]) -> int:
        task = asyncio.create_task(self._outbox.append(records))
        self._in_flight.add(task)
        task.add_done_callback(self._settled)
        return await asyncio.shield(task)

    def _settled(self, task: asyncio.Task[int]) -> None:
        self._in_flight.discard(task)
        if not task.cancelled() and isinstance(task.exception(), OutboxClosedError):
            log.info("a commit abandoned at stop: its source was not resumed")

    async def _pump(self, spec: SourceSpec, stop: asyncio.Event) -> None:
        health = self._health[spec.name]
        failures = 0
        last_error = ""
        while not stop.is_set():
            started = self._clock.monotonic()
            try:
                await self._run_source(spec, health, stop)
                if stop.is_set():
                    break
                raise TransientSourceError("the source ended its stream")  # noqa: TRY301
            except OutboxFullError as err:  # overflow: raise; the tuple in hand was not acked
                failures = failures + 1
                await self._restart_after(health, err, failures, stop, quiet=True)
                await self._wait_for_room(stop)
                continue
            except OutboxError:
                raise
            except PermanentSourceError as err:
                await self._failed(health, err)
                return
            except Exception as err:  # the supervisor isolates each source, bugs included
                lived = self._clock.monotonic() - started
                if lived >= self._config.supervision.restart_reset_after.total_seconds():
                    failures = 0  # a long healthy life: start the backoff again
                failures += 1
                text = f"{type(err).__name__}: {err}"
                await self._restart_after(health, err, failures, stop, quiet=text == last_error)
                last_error = text
        health.state = "stopped"

    async def _run_source(
        self, spec: SourceSpec, health: SourceHealth, stop: asyncio.Event
    ) -> None:
        """Runs one life of a source."""
        health.state = "starting"
        async with spec.factory() as source:
            health.state = "running"
            iterator = aiter(source)
            while (records := await self._next(iterator, stop)) is not None:
                self._alarms.observe(records)  # before, and whatever happens to, the commit
                await self._commit(records, wait_for_room=False)
                health.records += len(records)
                health.last_seen = self._clock.now()
                await self._passages(records)

    async def _wait_for_room(self, stop: asyncio.Event) -> None:
        interval = self._config.outbox.watch_interval.total_seconds()
        while self._outbox.stats().full and not stop.is_set():
            await self._clock.sleep(interval)

    async def _next(
        self, iterator: AsyncIterator[tuple[Record, ...]], stop_event: asyncio.Event
    ) -> tuple[Record, ...] | None:
        """The source's next tuple, or None once the agent stops.

        Asking for the next tuple is what lets the source acknowledge the previous one, so on
        stop it is still asked (and acknowledges), then cancelled while it waits.
        """
        nxt = asyncio.ensure_future(anext(iterator))
        stop = asyncio.ensure_future(stop_event.wait())
        try:
            await asyncio.wait({nxt, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
        if nxt.done():
            try:
                return nxt.result()
            except StopAsyncIteration:
                return None
        nxt.cancel()
        await asyncio.gather(nxt, return_exceptions=True)
        return None

    async def _passages(self, records: tuple[Record, ...]) -> None:
        """Feeds committed tag reads to the dock doors and commits the passages they close."""
        if not self._portals.portals:
            return
        for record in records:
            if isinstance(record, TagRead):
                seen = self._reader_clocks.get(record.reader_id)
                if seen is None or record.last_seen > seen[0]:
                    self._reader_clocks[record.reader_id] = (
                        record.last_seen,
                        self._clock.monotonic(),
                    )
        passages = tuple(self._portals.feed(records))
        if passages:
            await self._judge(passages)
            await self._commit(passages)

    async def _advance_portals(self) -> None:
        """Closes quiet passages when no read follows, on each reader's own clock."""
        while True:
            await self._clock.sleep(0.5)
            out = []
            for portal in self._portals.portals:
                seen = self._reader_clocks.get(portal.config.reader_id)
                if seen is not None:
                    elapsed = timedelta(seconds=self._clock.monotonic() - seen[1])
                    out += portal.advance(seen[0] + elapsed)
            if out:
                await self._judge(out)
                await self._commit(tuple(out))

    async def _judge(self, passages: Sequence[PortalPassage]) -> None:
        """The door's local alarm, at once and before the commit (``edge.door_guard``)."""
        if self._door_guard is None:
            return
        for passage in passages:
            await self._door_guard.judge(passage)

    async def _failed(self, health: SourceHealth, err: PermanentSourceError) -> None:
        health.state, health.last_error = "failed", str(err)
        health.errors += 1
        log.error("source %s failed permanently, not restarted: %s", health.name, err)
        await self._alarms.raise_alarm(f"source/{health.name}", f"failed permanently: {err}")

    async def _restart_after(
        self, health: SourceHealth, err: Exception, failures: int, stop_event: asyncio.Event,
        *, quiet: bool = False,
    ) -> None:  # fmt: skip
        health.state, health.last_error = "backoff", f"{type(err).__name__}: {err}"
        health.errors += 1
        sup = self._config.supervision
        delay = backoff_delay(failures - 1, sup.restart_initial, sup.restart_max, self._rng)
        if isinstance(err, TransientSourceError | OutboxFullError) or quiet:
            # The same crash again is one line, not another traceback.
            log.warning("source %s: %s; restarting in %.1f s", health.name, err, delay)
        else:
            log.exception("source %s crashed; restarting in %.1f s", health.name, delay)
        sleep = asyncio.ensure_future(self._clock.sleep(delay))
        stop = asyncio.ensure_future(stop_event.wait())
        await asyncio.wait({sleep, stop}, return_when=asyncio.FIRST_COMPLETED)
        await _cancel([sleep, stop])
        health.restarts += 1

    async def _watch_outbox(self) -> None:
        interval = self._config.outbox.watch_interval.total_seconds()
        while True:
            stats = self._outbox.stats()
            await self._toggle(
                "outbox/full",
                stats.full,
                f"outbox full ({stats.records} records, {stats.disk_bytes} bytes on disk): "
                "sources are paused and their new readings are neither committed nor judged "
                "locally until the cloud takes records",
                "outbox has room again",
            )
            await self._toggle(
                "outbox/disk_full",
                stats.disk_full,
                f"the outbox's filesystem is full: {stats.disk_error}; appends wait "
                "until the cloud acknowledges records or space is freed",
                "the outbox can write again",
            )
            ttf = stats.time_to_full
            eta = f", full in about {_duration(ttf)} at the recent rate" if ttf else ""
            cfg = self._config.outbox
            soon = filling_soon(stats.fill_ratio, ttf, cfg.filling_alarm, cfg.filling_min_ratio)
            why = (
                "" if stats.high_water
                else f" (below high water, but full within the {_duration(cfg.filling_alarm)}"
                " alarm threshold)"
            )  # fmt: skip
            await self._toggle(
                "outbox/high_water",
                stats.high_water or soon,
                f"outbox {stats.fill_ratio:.0%} full ({stats.records} records, "
                f"{stats.disk_bytes} bytes on disk){eta}{why}; sources pause when it is full",
                "outbox below high water and not filling fast",
            )
            await self._clock.sleep(interval)

    async def _toggle(self, key: str, on: bool, raised: str, cleared: str) -> None:
        """Raises at once; clears after ``_CLEAR_AFTER`` quiet checks in a row, so an outbox
        at its bound (room made by an ack, taken by the next append) does not flap."""
        if on:
            self._quiet[key] = 0
            await self._alarms.raise_alarm(key, raised)
        elif key in self._alarms.active:
            self._quiet[key] = self._quiet.get(key, 0) + 1
            if self._quiet[key] >= _CLEAR_AFTER:
                await self._alarms.clear_alarm(key, cleared)

    async def _flush(self) -> None:
        budget = self._config.supervision.shutdown_flush.total_seconds()
        if budget <= 0 or not self._outbox.stats().records:
            return
        try:
            async with asyncio.timeout(budget):
                emptied = await self._uplink.drain(self._clock.monotonic() + budget)
        except TimeoutError:
            emptied = False
        log.info("shutdown flush: %s", "outbox empty" if emptied else "records kept for later")


async def _cancel(tasks: Sequence[asyncio.Task[Any]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def run_agent(
    config: EdgeConfig,
    stop: asyncio.Event,
    sources: Sequence[SourceSpec],
    *,
    client: httpx.AsyncClient | None = None,
    clock: Clock | None = None,
    started: Callable[[Agent], object] | None = None,
    build_sources: Callable[[EdgeConfig], Sequence[SourceSpec]] | None = None,
) -> None:
    """Opens the outbox, the HTTP client and the alarm broker, runs the agent, closes them.

    With ``remote_config`` set, the sources, doors and alarm limits come from the cloud
    (``edge.remote_config``) and ``build_sources`` makes the sources of each configuration;
    ``sources`` is then not used.

    A damaged outbox file is moved aside and the agent starts on a fresh one (a new boot id)
    with the alarm ``outbox/corrupt`` raised, rather than crash-looping with no sources and no
    alarms.
    """
    clock = clock or SystemClock()
    async with AsyncExitStack() as stack:
        opened = await open_outbox(config.outbox.path, config.outbox.limits(), clock)
        outbox = opened.outbox
        stack.push_async_callback(outbox.close)
        if client is None:
            client = await stack.enter_async_context(httpx.AsyncClient(http2=False))
        local, remote_state, config_client = config, None, None
        if config.remote_config is not None:
            if build_sources is None:
                raise ValueError("remote_config needs build_sources")
            config_client = ConfigClient(client, config)
            config, remote_state = await starting_config(local, config_client, config.remote_config)
            sources = build_sources(config)
        publisher = None
        if config.alarms.broker is not None:
            publisher = await stack.enter_async_context(MqttAlarmPublisher(config.alarms.broker))
        lag = CloudLag(clock, outbox.stats)
        notifier = LocalNotifier(
            config.gateway_id, config.alarms.notify, clock, lag.oldest_unacknowledged
        )
        alarms = LocalAlarms(config.gateway_id, config.alarms, clock, lag.behind, publisher,
                             listener=notifier.on_signal)  # fmt: skip
        uplink = Uplink(
            config.gateway_id, outbox, client, config.cloud.uplink(), clock, alarms=alarms
        )
        guard, feed = None, None
        if config.door_guard is not None:
            guard = DoorGuard(alarms)  # the same sink as the limits: MQTT beacon, notifiers
            feed = DoorListFeed(
                DoorListClient(client, config, config.door_guard.site_id),
                config.door_guard, guard, clock, lambda: agent.has_doors,
            )  # fmt: skip
            feed.load_cached()
        agent = Agent(
            config,
            outbox=outbox,
            uplink=uplink,
            alarms=alarms,
            sources=sources,
            clock=clock,
            lag=lag,
            door_guard=guard,
        )
        agent.door_feed = feed
        if opened.moved_aside is not None:
            await alarms.raise_alarm(
                "outbox/corrupt",
                f"the outbox file was damaged ({opened.damage}) and was moved to "
                f"{opened.moved_aside}; a fresh outbox (boot {outbox.boot_id}) is in use. "
                "Records in the damaged file were not sent: salvage them with sqlite3 .recover",
            )

        def helper(name: str, run: Callable[[], Awaitable[None]]) -> asyncio.Task[None]:
            kept = kept_running(name, run, clock=clock, supervision=local.supervision)
            return asyncio.create_task(kept, name=name)

        helpers = [helper("notify", notifier.run)]
        if feed is not None:
            helpers.append(helper("door-list", feed.run))
        if remote_state is not None and config_client is not None and build_sources is not None:
            agent.remote = _remote(
                agent, local, client=config_client, state=remote_state, clock=clock,
                build_sources=build_sources,
            )  # fmt: skip
            helpers.append(helper("remote-config", agent.remote.run))
            interval = (
                local.remote_config.poll_interval.total_seconds() if local.remote_config else 30
            )
            browser = BrowseWorker(config_client, clock, interval)
            helpers.append(helper("opcua-browse", browser.run))
        if started is not None:
            started(agent)
        try:
            await agent.run(stop)
        finally:
            await _cancel(helpers)


def _duration(span: timedelta) -> str:
    """A time to full in words.

    >>> _duration(timedelta(hours=2, minutes=10, seconds=7)), _duration(timedelta(seconds=95))
    ('2 h 10 min', '1 min 35 s')
    """
    seconds = int(span.total_seconds())
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    if seconds >= 60:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds} s"


def _remote(
    agent: Agent, local: EdgeConfig, *, client: ConfigClient, state: RemoteState, clock: Clock,
    build_sources: Callable[[EdgeConfig], Sequence[SourceSpec]],
) -> RemoteConfig:  # fmt: skip
    async def apply(config: EdgeConfig) -> None:
        await agent.ready.wait()  # a source can be swapped only once the supervisor runs
        await agent.reconfigure(config, build_sources(config))

    assert local.remote_config is not None  # checked by the caller
    return RemoteConfig(
        local, client=client, settings=local.remote_config, clock=clock, apply=apply, state=state
    )
