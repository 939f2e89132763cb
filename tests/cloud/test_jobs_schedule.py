"""Jobs run once per interval across all processes, scheduled from the database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import psycopg
import pytest
from psycopg import AsyncConnection
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

from cloud.config import JobSettings
from cloud.jobs.scheduler import Job, run_job, running_scheduler
from cloud.storage.database import make_pool
from tests.support.cloud_ingest import count

pytestmark = pytest.mark.integration

Pool = AsyncConnectionPool[AsyncConnection[TupleRow]]


@pytest.fixture
async def pools(timescale_url: str) -> AsyncIterator[list[Pool]]:
    """Three pools: three service processes as far as the database can tell."""
    pools = [make_pool(timescale_url, max_size=2) for _ in range(3)]
    for pool in pools:
        await pool.open()
    yield pools
    for pool in pools:
        await pool.close()


def _counting(name: str, every: timedelta, runs: list[datetime]) -> Job:
    async def work(conn: AsyncConnection[TupleRow], now: datetime) -> object:
        runs.append(now)
        await conn.execute("SELECT 1")
        return len(runs)

    return Job(name, every, work)


async def test_many_processes_run_a_job_once_per_interval(
    timescale_url: str, pools: list[Pool]
) -> None:
    runs: list[datetime] = []
    job = _counting("hourly", timedelta(hours=1), runs)
    results = await asyncio.gather(*(run_job(p, job) for p in pools * 4))
    assert sorted(ran for ran, _ in results) == [False] * 11 + [True]
    assert len(runs) == 1
    # An hour later (the schedule row says it is due again): once more, by whichever process.
    async with await psycopg.AsyncConnection.connect(timescale_url, autocommit=True) as conn:
        await conn.execute(
            "UPDATE job_schedule SET next_run_at = now() - interval '1 second'"
            " WHERE name = 'hourly'"
        )
    results = await asyncio.gather(*(run_job(p, job) for p in pools * 4))
    assert [ran for ran, _ in results].count(True) == 1
    assert await count(timescale_url, "job_schedule", "name = 'hourly' AND runs = 2"
                       " AND last_finished_at IS NOT NULL AND last_error IS NULL"
                       " AND next_run_at > now() + interval '59 minutes'") == 1  # fmt: skip
    assert (await run_job(pools[0], job, force=True))[0]  # an operator's explicit run


async def test_schedulers_in_three_processes_share_one_cadence(
    timescale_url: str, pools: list[Pool]
) -> None:
    runs: list[datetime] = []
    job = _counting("fast", timedelta(seconds=1), runs)
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(running_scheduler(p, JobSettings(), stop, only=[job])) for p in pools
    ]
    await asyncio.sleep(4.2)  # first ticks after 1 s, then due once a second
    stop.set()
    await asyncio.gather(*tasks)
    # Three schedulers ticking four times a second: without the schedule row that is ~36 runs.
    assert 2 <= len(runs) <= 4


async def test_a_failing_job_records_its_error_and_keeps_its_cadence(
    timescale_url: str, pools: list[Pool]
) -> None:
    async def broken(conn: AsyncConnection[TupleRow], now: datetime) -> object:
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        await run_job(pools[0], Job("broken", timedelta(minutes=5), broken))
    assert await count(timescale_url, "job_schedule",
                       "name = 'broken' AND last_error LIKE '%disk full%'") == 1  # fmt: skip
    assert (await run_job(pools[1], Job("broken", timedelta(minutes=5), broken))) == (False, None)
