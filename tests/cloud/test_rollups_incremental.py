"""Rollups cost what changed: queued buckets only, nothing lost to a late commit, local days."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import psycopg
import pytest

from cloud.ingest.columns import decode_readings
from cloud.ingest.writer import store_batch
from cloud.jobs.rollups import hourly_is_table, queue_touched, refresh_rollups
from cloud.storage.migrations import available, migrate
from protocols.batch import Sequenced
from protocols.records import Quality, Reading
from tests.support.cloud_ingest import T0, app_client, batch_with, count, create_gateway, post
from tests.support.databases import DatabaseFactory

pytestmark = pytest.mark.integration

SETTLE = timedelta(minutes=2)


def _reading(sensor: str, at: datetime, value: float, quality: Quality = Quality.GOOD) -> Reading:
    return Reading(sensor_id=sensor, time=at, value=value, quality=quality, received_at=at)


async def _store(url: str, readings: list[Reading]) -> None:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        await store_batch(conn, batch_with("gw-1", uuid4(), 1, readings))


async def _rows(url: str, table: str) -> list[tuple[object, ...]]:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cur = await conn.execute(
            f"SELECT bucket, samples, min_value, avg_value, max_value FROM {table}"
            " ORDER BY sensor_id, bucket"
        )
        return list(await cur.fetchall())


async def _refresh(url: str) -> tuple[int, int]:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        result = await refresh_rollups(conn, datetime.now(UTC), SETTLE)
    assert result.method == "tables"
    return result.hours, result.days


async def test_only_queued_buckets_are_recomputed_and_a_late_backlog_is_folded_in(
    database_url: str,
) -> None:
    await create_gateway(database_url)
    await _store(database_url, [_reading("s1", T0 + timedelta(minutes=m), float(m))
                                for m in (0, 30, 90)])  # fmt: skip
    assert await _refresh(database_url) == (2, 1)
    assert await _refresh(database_url) == (0, 0)  # nothing queued, nothing scanned
    # A logger's backlog for the first hour arrives later, and a bad reading that is left out.
    backlog = [
        _reading("s1", T0 + timedelta(minutes=45), 60.0),
        _reading("s1", T0 + timedelta(minutes=50), 99.0, Quality.BAD),
    ]
    await _store(database_url, backlog)
    assert await _refresh(database_url) == (1, 1)
    assert await _rows(database_url, "readings_hourly") == [
        (T0, 3, 0.0, 30.0, 60.0),
        (T0 + timedelta(hours=1), 1, 90.0, 90.0, 90.0),
    ]
    assert await _rows(database_url, "readings_daily") == [(T0, 4, 0.0, 45.0, 90.0)]  # UTC site
    assert await count(database_url, "rollup_queue") == 0
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        assert await hourly_is_table(conn)


async def test_a_transaction_that_commits_late_is_not_skipped(timescale_url: str) -> None:
    late = _reading("s1", T0 + timedelta(minutes=5), 8.0)
    async with await psycopg.AsyncConnection.connect(timescale_url) as slow:
        # An ingest transaction that started first and commits after the job's pass.
        await slow.execute(
            "INSERT INTO readings (time, sensor_id, value, quality, received_at, gateway_id,"
            " boot_id, seq) VALUES (%s, 's1', 8.0, 'good', %s, 'gw-1', %s, 1)",
            (late.time, late.received_at, uuid4()),
        )
        await queue_touched(slow, [Sequenced(seq=1, record=late)])
        assert await _refresh(timescale_url) == (0, 0)
        await slow.commit()
    assert await _refresh(timescale_url) == (1, 1)
    assert await _rows(timescale_url, "readings_hourly") == [(T0, 1, 8.0, 8.0, 8.0)]


async def _site(url: str, zone: str) -> None:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        await conn.execute("INSERT INTO sites (site_id, name, timezone) VALUES ('x', 'X', %s)",
                           (zone,))  # fmt: skip
        await conn.execute("INSERT INTO locations (location_id, site_id, kind, name)"
                           " VALUES ('fridge-x', 'x', 'fridge', 'Fridge X')")  # fmt: skip
        await conn.execute("INSERT INTO sensors (sensor_id, location_id) VALUES ('s1', 'fridge-x')")
        await conn.execute("UPDATE gateways SET site_id = 'x'")  # the gateway writes for site x
        await conn.commit()


@pytest.mark.parametrize(
    ("day", "hours", "midnight_utc"),
    [
        ("2026-03-29", 23, datetime(2026, 3, 28, 23, tzinfo=UTC)),  # spring forward
        ("2026-10-25", 25, datetime(2026, 10, 24, 22, tzinfo=UTC)),  # fall back
        ("2026-07-01", 24, datetime(2026, 6, 30, 22, tzinfo=UTC)),
    ],
)
async def test_daily_rollups_follow_the_sites_local_day_across_dst(
    timescale_url: str, day: str, hours: int, midnight_utc: datetime
) -> None:
    await create_gateway(timescale_url)
    await _site(timescale_url, "Europe/Berlin")
    # One reading per UTC hour from a day before to a day after, valued by its UTC hour.
    start = midnight_utc - timedelta(days=1)
    readings = [_reading("s1", start + timedelta(hours=h), float(h)) for h in range(72)]
    await _store(timescale_url, readings)
    await _refresh(timescale_url)
    async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
        cur = await conn.execute(
            "SELECT bucket, samples, min_value, max_value, time_zone FROM readings_daily"
            " WHERE local_date = %s::date",
            (day,),
        )
        row = await cur.fetchone()
    assert row == (midnight_utc, hours, 24.0, 24.0 + hours - 1, "Europe/Berlin")


async def test_a_zone_off_the_whole_hour_counts_the_partial_hours_exactly(
    timescale_url: str,
) -> None:
    await create_gateway(timescale_url)
    await _site(timescale_url, "Asia/Kathmandu")  # UTC+05:45
    start = datetime(2026, 5, 1, tzinfo=UTC)
    readings = [_reading("s1", start + timedelta(minutes=5 * i), float(i)) for i in range(576)]
    await _store(timescale_url, readings)  # two UTC days, one every 5 minutes
    await _refresh(timescale_url)
    async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
        cur = await conn.execute(
            "SELECT d.samples, d.min_value, d.avg_value, d.max_value, x.n, x.lo, x.mean, x.hi"
            " FROM readings_daily d, LATERAL (SELECT count(*), min(value), avg(value), max(value)"
            "   FROM readings r WHERE r.time >= d.bucket"
            "   AND r.time < ((d.local_date + 1)::timestamp AT TIME ZONE d.time_zone))"
            "   AS x(n, lo, mean, hi)"
            " WHERE d.local_date = '2026-05-01'"
        )
        row = await cur.fetchone()
    assert row is not None
    samples, low, mean, high, n, lo, expected_mean, hi = row
    assert (samples, low, high) == (n, lo, hi)
    assert mean == pytest.approx(expected_mean)
    assert samples == 288 - 69  # the day starts at 18:15 UTC on 30 April: 69 slots before data


async def test_migration_0073_requeues_an_existing_database_in_local_days(
    databases: DatabaseFactory,
) -> None:
    url = databases.create(migrated=False)
    before = [m for m in available() if m.version < 73]
    async with await psycopg.AsyncConnection.connect(url) as conn:
        await migrate(conn, migrations=before)
        # The old job's state: hours and UTC days rolled up, one reading stored after its pass.
        await conn.execute(
            "INSERT INTO readings (time, sensor_id, value, quality, received_at, stored_at,"
            " gateway_id, boot_id, seq) SELECT t, 's1', 4.0, 'good', t, t, 'gw-1', %s, i"
            " FROM generate_series(1, 48) i, LATERAL (SELECT %s + i * interval '1 hour') x(t)",
            (uuid4(), T0),
        )
        await conn.execute(
            "INSERT INTO readings_hourly (sensor_id, bucket, samples, min_value, avg_value,"
            " max_value) SELECT 's1', %s + h * interval '1 hour', 1, 4, 4, 4"
            " FROM generate_series(1, 47) h",
            (T0,),
        )
        await conn.execute(
            "INSERT INTO readings_daily (sensor_id, bucket, samples, min_value, avg_value,"
            " max_value) VALUES ('s1', %s, 23, 4, 4, 4), ('s1', %s, 24, 4, 4, 4)",
            (T0, T0 + timedelta(days=1)),
        )
        await conn.execute(
            "INSERT INTO rollup_progress (name, stored_through) VALUES ('readings', %s)",
            (T0 + timedelta(hours=47, minutes=30),),
        )
        await conn.commit()
        await _site(url, "Europe/Berlin")  # UTC+1 in January
        assert await migrate(conn) == [m.name for m in available() if m.version >= 73]
        result = await refresh_rollups(conn, datetime.now(UTC), SETTLE)
    assert result.hours >= 5  # 2 per old UTC day + the hour stored after the old pass
    # The UTC days are gone; local days: 1 January 01:00-23:00 UTC, 2 January, 3 January.
    midnight = T0 - timedelta(hours=1)
    assert await _rows(url, "readings_daily") == [
        (midnight, 22, 4.0, 4.0, 4.0),
        (midnight + timedelta(days=1), 24, 4.0, 4.0, 4.0),
        (midnight + timedelta(days=2), 2, 4.0, 4.0, 4.0),
    ]


async def test_the_mode_follows_the_schema_a_view_of_hours_is_left_to_timescaledb(
    timescale_url: str,
) -> None:
    """Where ``readings_hourly`` is a view (what a continuous aggregate is to the catalog), the job
    writes no hours, waits for queued buckets to settle, then keeps the local days from it."""
    await create_gateway(timescale_url)
    async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
        await conn.execute("ALTER TABLE readings_hourly RENAME TO readings_hourly_kept")
        await conn.execute(
            "CREATE VIEW readings_hourly AS SELECT sensor_id,"
            " time_bucket(INTERVAL '1 hour', time) AS bucket, count(value) AS samples,"
            " min(value) AS min_value, avg(value) AS avg_value, max(value) AS max_value"
            " FROM readings WHERE quality <> 'bad' AND value IS NOT NULL"
            " GROUP BY sensor_id, time_bucket(INTERVAL '1 hour', time)"
        )
        await conn.commit()
        assert not await hourly_is_table(conn)
    await _store(timescale_url, [_reading("s1", T0 + timedelta(minutes=m), float(m))
                                 for m in (0, 30, 90)])  # fmt: skip

    async def refresh() -> tuple[str, int, int]:
        async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
            result = await refresh_rollups(conn, datetime.now(UTC), SETTLE)
        return result.method, result.hours, result.days

    assert await refresh() == ("continuous_aggregate", 0, 0)  # not settled yet: left queued
    assert await count(timescale_url, "rollup_queue") == 2
    async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
        await conn.execute("UPDATE rollup_queue SET queued_at = now() - interval '3 minutes'")
        await conn.commit()
    assert await refresh() == ("continuous_aggregate", 2, 1)
    assert await _rows(timescale_url, "readings_daily") == [(T0, 3, 0.0, 40.0, 90.0)]
    assert await count(timescale_url, "readings_hourly_kept") == 0  # no hours written by the job
    assert await count(timescale_url, "rollup_queue") == 0


async def test_the_columnar_fast_path_queues_the_same_buckets_as_the_contracts_path(
    timescale_url: str,
) -> None:
    gateway = await create_gateway(timescale_url)
    values = [("s1", 0, 1.0), ("s1", 59, 2.0), ("s1", 61, 3.0), ("s2", 10, 4.0)]
    readings = [_reading(s, T0 + timedelta(minutes=m), v) for s, m, v in values]
    fast = batch_with("gw-1", uuid4(), 1, readings)
    assert decode_readings(fast.model_dump_json().encode()) is not None  # takes the fast path
    async with app_client(timescale_url) as client:
        assert (await post(client, gateway, fast)).status_code == 200
    async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
        cur = await conn.execute("SELECT sensor_id, hour FROM rollup_queue ORDER BY 1, 2")
        queued = await cur.fetchall()
        items = [Sequenced(seq=i + 1, record=r) for i, r in enumerate(readings)]
        assert await queue_touched(conn, items) == len(queued)  # the contract's path's buckets
        cur = await conn.execute(
            "SELECT sensor_id, hour FROM rollup_queue GROUP BY 1, 2 HAVING count(*) = 2"
            " ORDER BY 1, 2"
        )
        assert await cur.fetchall() == queued
        await conn.rollback()
    assert queued == [("s1", T0), ("s1", T0 + timedelta(hours=1)), ("s2", T0)]
    assert await _refresh(timescale_url) == (3, 2)
    assert await _rows(timescale_url, "readings_hourly") == [
        (T0, 2, 1.0, 1.5, 2.0), (T0 + timedelta(hours=1), 1, 3.0, 3.0, 3.0),
        (T0, 1, 4.0, 4.0, 4.0),
    ]  # fmt: skip
