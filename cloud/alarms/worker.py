"""The alarm worker: routes and escalates due alarms, then sends the due deliveries.

Runs in every service process. Alarms are claimed ``FOR UPDATE SKIP LOCKED`` and decided in one
transaction with the deliveries they queue, so a step is queued once however many processes run.
Deliveries are claimed with a lease (committed before sending); the outcome is recorded after
the send. A process that dies mid-send leaves a lease that runs out, and another process sends
again: delivery is at least once, and a duplicate can only come from that window.

Woken by ``NOTIFY coldtrace_alarms`` (the trigger that makes an alarm per alert), so a new alert
is sent within moments of its commit; polling covers timers and a lost listener.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg import AsyncConnection, InterfaceError, OperationalError
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from cloud.alarms import store
from cloud.alarms.channels import Notifier, SendOutcome, scrub
from cloud.alarms.config_store import directory
from cloud.alarms.directory import resolve
from cloud.alarms.escalation import Situation, decide
from cloud.alarms.kinds import default_route
from cloud.alarms.message import render, zone
from cloud.alarms.policy import choose_policy, quiet_until
from cloud.alarms.settings import AlarmSettings
from cloud.coldchain.alerts import NewAlert, raise_alert
from cloud.jobs.wake import wait_any

log = logging.getLogger(__name__)

NOTIFY_CHANNEL = "coldtrace_alarms"
_RETRY_DECISION = timedelta(minutes=1)
_TRANSIENT = (OperationalError, InterfaceError, PoolTimeout)
Pool = AsyncConnectionPool[AsyncConnection[TupleRow]]


@dataclass(frozen=True)
class TickResult:
    decided: int
    queued: int
    sent: int
    failed: int


class AlarmWorker:
    def __init__(self, pool: Pool, notifier: Notifier, settings: AlarmSettings) -> None:
        self._pool = pool
        self._notifier = notifier
        self._settings = settings

    async def tick(self, now: datetime | None = None) -> TickResult:
        """One pass: decide due alarms, then send due deliveries."""
        at = now or datetime.now(UTC)
        decided, queued = await self.escalate_due(at)
        sent, failed = await self.deliver_due(at if now else datetime.now(UTC))
        return TickResult(decided, queued, sent, failed)

    async def escalate_due(self, now: datetime) -> tuple[int, int]:
        async with self._pool.connection() as conn, conn.transaction():
            due = await store.claim_due_alarms(conn, now, self._settings.batch_size)
            queued = 0
            for alarm in due:
                try:
                    async with conn.transaction():  # a savepoint: one bad alarm holds up none
                        queued += await self._decide(conn, alarm, now)
                except _TRANSIENT:
                    raise
                except Exception as err:  # recorded on the alarm and tried again, never lost
                    log.exception("alarm %s could not be decided", alarm.alert_id)
                    await store.defer(conn, alarm.alert_id, now + _RETRY_DECISION,
                                      f"{type(err).__name__}: {err}"[:500])  # fmt: skip
        return len(due), queued

    async def _decide(
        self, conn: AsyncConnection[TupleRow], alarm: store.DueAlarm, now: datetime
    ) -> int:
        if alarm.site_id is None:
            await store.save_decision(
                conn, alarm.alert_id, decide(Situation(None, "none", alarm.step, alarm.round, now)),
                site_id=None, policy=None, route=None, problems=["no site known"], now=now,
            )  # fmt: skip
            return 0
        book = await directory(conn, alarm.site_id)
        tz = zone(await store.site_timezone(conn, alarm.site_id))
        locations, profile = await store.location_chain(conn, alarm.location_id)
        chosen = choose_policy(
            book.policies, kind=alarm.kind, severity=alarm.severity,
            locations=locations, profile_id=profile,
        )  # fmt: skip
        name, policy = chosen if chosen else (None, None)
        route = default_route(alarm.kind, alarm.severity)
        if policy is not None:
            route = policy.routes.get(alarm.kind, route)
        decision = decide(
            Situation(
                policy=policy, route=route, step=alarm.step, round=alarm.round, now=now,
                acknowledged=alarm.acknowledged, critical=alarm.severity == "critical",
                cleared=alarm.cleared,
                sticky=alarm.severity == "critical" and alarm.excursion_id is not None,
                suppressed_until=await store.suppressed_until(conn, locations, now),
                quiet_until=quiet_until(policy.quiet_hours, now, tz) if policy else None,
                # Held, or raised inside a window though first looked at after it (a busy or
                # stopped worker): the window's rule holds either way.
                was_suppressed=alarm.held == "suppressed"
                or await store.suppressed_until(conn, locations, alarm.raised_at) is not None,
            )
        )  # fmt: skip
        problems: list[str] = []
        queued = 0
        if decision.notify_step is not None and policy is not None:
            targets = policy.steps[decision.notify_step].notify
            recipients, problems = resolve(book, list(targets), now, tz)
            queued = await store.enqueue(
                conn, alarm.alert_id, [(r.channel, r.contact) for r in recipients],
                site_id=alarm.site_id, step=decision.step, round_=decision.round, now=now,
            )  # fmt: skip
            if queued == 0 and decision.finish is None and decision.step < len(policy.steps) - 1:
                # Nobody could be told on this step: go on to the next one now.
                decision = replace(decision, next_at=now)
        await store.save_decision(
            conn, alarm.alert_id, decision, site_id=alarm.site_id, policy=name, route=route,
            problems=problems, now=now,
        )  # fmt: skip
        if problems:
            log.warning("alarm %s: %s", alarm.alert_id, "; ".join(problems))
        return queued

    async def deliver_due(self, now: datetime) -> tuple[int, int]:
        s = self._settings
        async with self._pool.connection() as conn:
            claimed = await store.claim_deliveries(conn, now, now + s.lease, s.batch_size)
        if not claimed:
            return 0, 0
        gate = asyncio.Semaphore(s.concurrency)
        facts: dict[tuple[int, str], dict[str, Any] | None] = {}

        async def one(c: store.Claimed) -> bool:
            async with gate:
                return await self._deliver(c, facts)

        results = await asyncio.gather(*(one(c) for c in claimed), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                # The outcome could not be recorded (database away): the lease runs out and the
                # delivery is tried again.
                log.warning("alarm delivery outcome not recorded: %r", result)
        sent = sum(1 for r in results if r is True)
        return sent, len(results) - sent

    async def _deliver(
        self, c: store.Claimed, cache: dict[tuple[int, str], dict[str, Any] | None]
    ) -> bool:
        async with self._pool.connection() as conn:
            if await store.acknowledged(conn, c.alert_id):
                # Someone answered while this waited (a retry, a slow step): nobody is woken.
                async with conn.transaction():
                    await store.record_skipped(
                        conn, c, datetime.now(UTC), "not sent: acknowledged before it went out"
                    )
                return False
        try:
            outcome, permanent = await self._send(c, cache)
        except _TRANSIENT:
            raise
        except Exception as err:  # a bug or a library failure: logged as this attempt's error
            log.exception("alarm delivery %s failed unexpectedly", c.delivery_id)
            error = scrub(c.url, f"{type(err).__name__}: {err}")[:500]
            outcome, permanent = SendOutcome(False, error), False
        await self._record(c, outcome, permanent=permanent)
        return outcome.ok

    async def _send(
        self, c: store.Claimed, cache: dict[tuple[int, str], dict[str, Any] | None]
    ) -> tuple[SendOutcome, bool]:
        """The outcome of sending ``c``, and whether a failure is permanent."""
        key = (c.alert_id, c.site_id)
        if key not in cache:
            async with self._pool.connection() as conn:
                cache[key] = await store.facts(conn, c.alert_id, c.site_id)
        base = cache[key]
        if not c.channel_enabled:
            outcome = SendOutcome(False, "channel disabled")
        elif base is None:
            outcome = SendOutcome(False, "alert not found")
        else:
            root = str(self._settings.public_url).rstrip("/")
            ack = f"{root}/alarms/ack/{c.ack_token}" if c.ack_token else None
            title, body = render(
                store.build_facts(base, ack_url=ack, page_url=f"{root}/ui", step=c.step,
                                  round=c.round)
            )  # fmt: skip
            outcome = await self._notifier.send(c.url, title, body)
        return outcome, not c.channel_enabled or base is None

    async def _record(self, c: store.Claimed, outcome: SendOutcome, *, permanent: bool) -> None:
        s = self._settings
        now = datetime.now(UTC)
        async with self._pool.connection() as conn, conn.transaction():
            if outcome.ok:
                await store.record_sent(conn, c, now)
                return
            give_up = permanent or c.attempts >= s.max_attempts
            delay = min(s.backoff_initial * (2 ** min(c.attempts - 1, 20)), s.backoff_max)
            error = outcome.error or "failed"
            failures = await store.record_failure(
                conn, c, now, error, give_up=give_up, retry_at=now + delay
            )
            log.warning("alarm delivery %s (attempt %s) failed: %s", c.delivery_id, c.attempts,
                        error)  # fmt: skip
            if give_up or failures >= s.channel_failure_threshold:
                await store.escalate_now(conn, c, now)
            if failures >= s.channel_failure_threshold:
                await _channel_alarm(conn, c, failures, error, now)

    async def run(self, stop: asyncio.Event, listen_url: str | None) -> None:
        """Works until ``stop`` is set, woken by NOTIFY (unless ``listen_url`` is None) or every
        ``poll_interval``."""
        wake = asyncio.Event()
        async with asyncio.TaskGroup() as group:
            if listen_url is not None:
                group.create_task(self._listen(listen_url, wake, stop))
            group.create_task(self._work(wake, stop))

    async def _work(self, wake: asyncio.Event, stop: asyncio.Event) -> None:
        while not stop.is_set():
            wake.clear()
            try:
                result = await self.tick()
                if result.decided or result.sent or result.failed:
                    log.info("alarms: %s", result)
            except _TRANSIENT as err:
                log.warning("alarm worker: database unavailable (%s); retrying", err)
            await wait_any(wake, stop, self._settings.poll_interval)

    async def _listen(self, url: str, wake: asyncio.Event, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                async with await AsyncConnection.connect(url, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    wake.set()
                    while not stop.is_set():
                        async for _ in conn.notifies(timeout=0.5):
                            wake.set()
            except _TRANSIENT as err:
                log.info("alarm worker: listener reconnecting (%s)", err)
                await wait_any(stop, stop, timedelta(seconds=1))


async def _channel_alarm(
    conn: AsyncConnection[TupleRow], c: store.Claimed, failures: int, error: str, now: datetime
) -> None:
    """The channel's own alarm, once per failure streak (keyed by its last success)."""
    cur = await conn.execute(
        "SELECT name, coalesce(last_success_at, created_at) FROM alarm_channels"
        " WHERE channel_id = %s",
        (c.channel_id,),
    )
    row = await cur.fetchone()
    if row is None:
        return
    name, streak = row
    await raise_alert(
        conn,
        NewAlert(
            kind="channel_failing",
            severity="critical",
            at=now,
            message=f"notification channel {name!r} failed {failures} times in a row: {error}",
            dedup_key=f"channel_failing:{c.channel_id}:{streak.isoformat()}",
            detail={"site_id": c.site_id, "channel": name, "failures": failures},
        ),
    )
