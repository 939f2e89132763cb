"""Maintenance jobs: retention, incremental rollups, stale sensors, one runner per job."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from uuid import uuid4

import psycopg
import pytest
from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from cloud.config import JobSettings
from cloud.ingest.writer import store_batch
from cloud.jobs import RetentionRefusedError
from cloud.jobs.locks import run_exclusive
from cloud.jobs.retention import Pruned, prune
from cloud.jobs.scheduler import jobs, run_job, running_scheduler
from cloud.jobs.stale import detect_stale
from cloud.storage.database import make_pool
from protocols.records import Reading
from tests.support.cloud_ingest import T0, batch_with, count, create_gateway

pytestmark = pytest.mark.integration


def _reading(sensor: str, at: datetime, value: float) -> Reading:
    return Reading(sensor_id=sensor, time=at, value=value, received_at=at)


async def _store(url: str, readings: list[Reading], boot: object = None) -> None:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cur = await conn.execute("SELECT count(*) FROM gateways WHERE gateway_id = 'gw-1'")
        row = await cur.fetchone()
        if row is None or row[0] == 0:
            await create_gateway(url)
        await store_batch(conn, batch_with("gw-1", uuid4(), 1, readings))


async def test_retention_prunes_old_rows_in_both_layouts(
    database_url: str, storage_mode: str
) -> None:
    old = [_reading("s1", T0 - timedelta(days=40) + timedelta(minutes=i), 4.0) for i in range(30)]
    new = [_reading("s1", T0 + timedelta(minutes=i), 4.0) for i in range(5)]
    await _store(database_url, old + new)
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        result = await prune(conn, "readings", timedelta(days=30), T0, batch_rows=7)
        with pytest.raises(RetentionRefusedError):
            await prune(conn, "ledger_entries", timedelta(days=1), T0)
    assert result.method == ("drop_chunks" if storage_mode == "timescaledb" else "delete")
    assert result.removed == (1 if storage_mode == "timescaledb" else 30)
    assert await count(database_url, "readings") == 5


def test_retention_settings_refuse_the_ledger() -> None:
    with pytest.raises(ValueError, match="ledger"):
        JobSettings(retention={"ledger_entries": timedelta(days=1)})


async def test_stale_sensors_open_and_close_silences(timescale_url: str) -> None:
    await create_gateway(timescale_url)
    async with await psycopg.AsyncConnection.connect(timescale_url, autocommit=True) as conn:
        await conn.execute("INSERT INTO sites (site_id, name) VALUES ('site', 'Site')")
        await conn.execute(
            "INSERT INTO storage_profiles (profile_id, name, silence_after)"
            " VALUES ('tight', 'Tight', interval '5 minutes')"
        )
        await conn.execute(
            "INSERT INTO locations (location_id, site_id, kind, name, profile_id)"
            " VALUES ('f1', 'site', 'fridge', 'F1', 'tight')"
        )
        await conn.execute(
            "INSERT INTO devices (device_id, device_type, last_seen_at) VALUES ('fast', 'sensor',"
            " %(t)s), ('slow', 'sensor', %(t)s), ('reader', 'llrp_reader', %(t)s)",
            {"t": T0},
        )
        await conn.execute("INSERT INTO sensors (sensor_id, location_id) VALUES ('fast', 'f1')")
    async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
        at_6 = await detect_stale(conn, T0 + timedelta(minutes=6), timedelta(minutes=15))
        at_20 = await detect_stale(conn, T0 + timedelta(minutes=20), timedelta(minutes=15))
        repeat = await detect_stale(conn, T0 + timedelta(minutes=21), timedelta(minutes=15))
        await conn.execute("UPDATE devices SET last_seen_at = %s WHERE device_id = 'fast'",
                           (T0 + timedelta(minutes=22),))  # fmt: skip
        back = await detect_stale(conn, T0 + timedelta(minutes=23), timedelta(minutes=15))
        await conn.commit()
    assert (at_6.opened, at_20.opened, repeat.opened) == (1, 1, 0)  # fast at 6 min, slow at 20
    assert back.closed == 1
    assert await count(timescale_url, "device_silences", "ended_at IS NULL") == 1
    assert await count(timescale_url, "device_silences", "device_id = 'reader'") == 0


async def test_a_job_runs_in_one_session_at_a_time(timescale_url: str) -> None:
    entered = asyncio.Event()
    release = asyncio.Event()

    async def slow(conn: AsyncConnection[TupleRow]) -> str:
        entered.set()
        await release.wait()
        return "done"

    async with (
        await psycopg.AsyncConnection.connect(timescale_url) as one,
        await psycopg.AsyncConnection.connect(timescale_url) as two,
    ):
        first = asyncio.create_task(run_exclusive(one, "retention", slow))
        await entered.wait()
        skipped = await run_exclusive(two, "retention", slow)
        other_job = await run_exclusive(two, "rollups", lambda c: asyncio.sleep(0, "ok"))
        release.set()
        assert await first == (True, "done")
        after = await run_exclusive(two, "retention", lambda c: asyncio.sleep(0, "again"))
    assert skipped == (False, None)
    assert other_job == (True, "ok")
    assert after == (True, "again")


async def test_the_scheduler_runs_every_job_and_stops(timescale_url: str) -> None:
    await _store(timescale_url, [_reading("s1", T0, 4.0)])
    async with await psycopg.AsyncConnection.connect(timescale_url, autocommit=True) as conn:
        await conn.execute("INSERT INTO devices (device_id, device_type, last_seen_at)"
                           " VALUES ('s1', 'sensor', %s)", (T0,))  # fmt: skip
    settings = JobSettings(rollup_settle=timedelta(seconds=1), stale_interval=timedelta(hours=1))
    pool = make_pool(timescale_url, max_size=4)
    async with pool:
        ran, result = await run_job(pool, jobs(settings)[0])
        assert ran
        assert result == [Pruned("ingest_batches", "delete", 0)]  # the default rule
        stop = asyncio.Event()
        scheduler = asyncio.create_task(running_scheduler(pool, settings, stop))
        for _ in range(100):  # the first round fires about a second after start
            if await count(timescale_url, "device_silences") == 1:
                break
            await asyncio.sleep(0.05)
        stop.set()
        await scheduler
    assert await count(timescale_url, "device_silences") == 1
