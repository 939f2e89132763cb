"""The maintenance scheduler: apscheduler 3.x, in-memory store, jobs registered here in code.

Every service process runs the scheduler, and a job still runs once per interval across all of
them: when a process's trigger fires, it takes the job's advisory lock (no overlap with a run in
another process) and, under the lock of the job's ``job_schedule`` row, runs the job only if
``next_run_at`` has come, moving it one interval ahead first (database clock, so processes with
different clocks agree). Triggers fire several times per interval (``TICKS_PER_INTERVAL``), so
the run happens within a fraction of the interval of being due whichever process gets it.

apscheduler's asyncio executor starts jobs as free tasks; ``running_scheduler`` keeps a reference
to each and waits for the ones in flight before it returns, so nothing is left running after
shutdown.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from psycopg import AsyncConnection, InterfaceError, OperationalError
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from cloud.alarms.conditions import detect_conditions
from cloud.alarms.settings import AlarmSettings
from cloud.calibration.due import check_calibrations
from cloud.coldchain.step import check_silences
from cloud.config import JobSettings
from cloud.jobs.locks import run_exclusive
from cloud.jobs.retention import prune_all
from cloud.jobs.rollups import refresh_rollups
from cloud.jobs.stale import detect_stale
from cloud.reports.schedules import JobSettings as ReportJobSettings
from cloud.reports.schedules import run_schedules

log = logging.getLogger(__name__)

Work = Callable[[AsyncConnection[TupleRow], datetime], Awaitable[object]]
Pool = AsyncConnectionPool[AsyncConnection[TupleRow]]

TICKS_PER_INTERVAL = 4
"""How often per interval each process asks whether a job is due."""


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

    report_cfg = ReportJobSettings(
        default_silence=settings.default_silence,
        calibration_lead=alarm_settings.calibration_lead,
        public_url=str(alarm_settings.public_url),
        send_timeout=alarm_settings.send_timeout,
    )

    async def reports(conn: AsyncConnection[TupleRow], now: datetime) -> object:
        return await run_schedules(conn, now, report_cfg)

    async def calibrations(conn: AsyncConnection[TupleRow], now: datetime) -> object:
        return await check_calibrations(conn, now, lead=alarm_settings.calibration_lead)

    return [
        Job("retention", settings.retention_interval, retention),
        Job("rollups", settings.rollup_interval, rollups),
        Job("stale_sensors", settings.stale_interval, stale),
        Job("coldchain_silences", settings.silence_check_interval, check_silences),
        Job("alarm_conditions", alarm_settings.conditions_interval, conditions),
        Job("calibration_alarms", alarm_settings.calibration_interval, calibrations),
        Job("report_schedules", settings.report_interval, reports),
    ]


_DUE_SQL = """
UPDATE job_schedule SET next_run_at = clock_timestamp() + %(every)s,
                        last_started_at = clock_timestamp(), runs = runs + 1
WHERE name = %(name)s AND (next_run_at <= clock_timestamp() OR %(force)s)
RETURNING runs
"""


async def run_job(
    pool: Pool, job: Job, now: datetime | None = None, *, force: bool = False
) -> tuple[bool, object]:
    """Runs ``job`` once if it is due (or ``force``) and no other process is running it.

    ``(False, None)`` when it was not due or another process holds it.
    """
    at = now or datetime.now(UTC)
    async with pool.connection() as conn:
        ran, result = await run_exclusive(conn, job.name, lambda c: _if_due(c, job, at, force))
    if ran and result is not _NOT_DUE:
        log.info("job %s: %s", job.name, result)
        return (True, result)
    return (False, None)


_NOT_DUE = object()


async def _if_due(conn: AsyncConnection[TupleRow], job: Job, at: datetime, force: bool) -> object:
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO job_schedule (name) VALUES (%s) ON CONFLICT DO NOTHING", (job.name,)
        )
        cur = await conn.execute(_DUE_SQL, {"every": job.every, "name": job.name, "force": force})
        if await cur.fetchone() is None:
            return _NOT_DUE
    error: str | None = None
    try:
        return await job.work(conn, at)
    except Exception as err:
        error = repr(err)[:2000]
        raise
    finally:
        await conn.rollback()  # whatever the work left open
        await conn.execute(
            "UPDATE job_schedule SET last_finished_at = clock_timestamp(), last_error = %s"
            " WHERE name = %s",
            (error, job.name),
        )
        await conn.commit()


async def running_scheduler(
    pool: Pool,
    settings: JobSettings,
    stop: asyncio.Event,
    *,
    alarms: AlarmSettings | None = None,
    only: Sequence[Job] | None = None,
) -> None:
    """Runs the scheduler until ``stop`` is set, then waits for the jobs in flight.

    ``only`` replaces the maintenance jobs (tests).
    """
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
    for job in jobs(settings, alarms) if only is None else only:
        tick = max(job.every / TICKS_PER_INTERVAL, timedelta(milliseconds=100))
        scheduler.add_job(
            guarded(job),
            "interval",
            seconds=tick.total_seconds(),
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
