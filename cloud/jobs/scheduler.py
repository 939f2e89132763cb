"""The maintenance scheduler: apscheduler 3.x, in-memory store, jobs registered here in code.

Each job runs under its advisory lock (``locks.run_exclusive``), so any number of service
processes can run the scheduler and each job still runs in one of them at a time. apscheduler's
asyncio executor starts jobs as free tasks; ``running_scheduler`` keeps a reference to each and
waits for the ones in flight before it returns, so nothing is left running after shutdown.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from psycopg import AsyncConnection, InterfaceError, OperationalError
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from cloud.alarms.conditions import detect_conditions
from cloud.alarms.settings import AlarmSettings
from cloud.coldchain.step import check_silences
from cloud.config import JobSettings
from cloud.jobs.locks import run_exclusive
from cloud.jobs.retention import prune_all
from cloud.jobs.rollups import refresh_rollups
from cloud.jobs.stale import detect_stale

log = logging.getLogger(__name__)

Work = Callable[[AsyncConnection[TupleRow], datetime], Awaitable[object]]
Pool = AsyncConnectionPool[AsyncConnection[TupleRow]]


@dataclass(frozen=True)
class Job:
    name: str
    every: timedelta
    work: Work


def jobs(settings: JobSettings, alarms: AlarmSettings | None = None) -> list[Job]:
    """The maintenance jobs, in code; nothing is read from a job store."""
    alarm_settings = alarms or AlarmSettings()

    async def retention(conn: AsyncConnection[TupleRow], now: datetime) -> object:
        return await prune_all(
            conn, settings.retention, now, batch_rows=settings.retention_batch_rows
        )

    async def rollups(conn: AsyncConnection[TupleRow], now: datetime) -> object:
        return await refresh_rollups(conn, now, settings.rollup_settle)

    async def stale(conn: AsyncConnection[TupleRow], now: datetime) -> object:
        return await detect_stale(conn, now, settings.default_silence)

    async def conditions(conn: AsyncConnection[TupleRow], now: datetime) -> object:
        return await detect_conditions(conn, now, alarm_settings)

    return [
        Job("retention", settings.retention_interval, retention),
        Job("rollups", settings.rollup_interval, rollups),
        Job("stale_sensors", settings.stale_interval, stale),
        Job("coldchain_silences", settings.silence_check_interval, check_silences),
        Job("alarm_conditions", alarm_settings.conditions_interval, conditions),
    ]


async def run_job(pool: Pool, job: Job, now: datetime | None = None) -> tuple[bool, object]:
    """Runs ``job`` once under its lock; ``(False, None)`` when another process holds it."""
    at = now or datetime.now(UTC)
    async with pool.connection() as conn:
        ran, result = await run_exclusive(conn, job.name, lambda c: job.work(c, at))
    if ran:
        log.info("job %s: %s", job.name, result)
    return (ran, result)


async def running_scheduler(
    pool: Pool, settings: JobSettings, stop: asyncio.Event, *, alarms: AlarmSettings | None = None
) -> None:
    """Runs the scheduler until ``stop`` is set, then waits for the jobs in flight."""
    in_flight: set[asyncio.Task[object]] = set()

    def guarded(job: Job) -> Callable[[], Awaitable[None]]:
        async def fire() -> None:
            task = asyncio.current_task()
            assert task is not None
            in_flight.add(task)
            try:
                await run_job(pool, job)
            except (OperationalError, InterfaceError, PoolTimeout) as err:
                log.warning("job %s skipped, database unavailable: %s", job.name, err)
            finally:
                in_flight.discard(task)

        return fire

    scheduler = AsyncIOScheduler(timezone=UTC)
    for job in jobs(settings, alarms):
        scheduler.add_job(
            guarded(job),
            "interval",
            seconds=job.every.total_seconds(),
            id=job.name,
            max_instances=1,
            coalesce=True,
            next_run_time=datetime.now(UTC) + timedelta(seconds=1),
        )
    scheduler.start()
    try:
        await stop.wait()
    finally:
        scheduler.shutdown(wait=False)
        if in_flight:
            await asyncio.gather(*in_flight, return_exceptions=True)
