"""Hourly and daily rollups of readings per sensor, costing what changed, days in local time.

Ingest queues the (sensor, UTC hour) buckets each batch touches (``rollup_queue``, in the
batch's transaction). Each pass takes queued rows in bounded rounds (one transaction each) and:

1. recomputes those hours in ``readings_hourly`` from ``readings`` — when ``readings_hourly`` is
   a table. When it is a continuous aggregate (Timescale licence), TimescaleDB keeps it; the
   pass then only takes rows queued at least ``settle`` ago, so the refresh policy has folded
   late data in. The mode follows the schema that exists, not the licence: a database migrated
   under the Apache build keeps its tables whatever licence it runs with later;
2. recomputes the local days of the sensor's site (``sites.timezone`` of its location, else of
   its gateway, else UTC) that those hours overlap, into ``readings_daily``: ``bucket`` is local
   midnight, so a day lasts 23 or 25 hours across a DST change. A day is the whole UTC hours
   inside it (from ``readings_hourly``) plus the readings of the partial hours at its ends (zones
   such as Asia/Kolkata are not on whole hours).

Recomputing touched buckets rather than adding deltas makes a re-run harmless. A transaction
that commits late makes its queue rows visible late; they are taken then, so nothing is missed
(``stored_at``, the transaction's start, could not promise that). A bucket left without good
readings (all bad quality, or pruned) loses its row.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from protocols.batch import Sequenced
from protocols.records import Reading

_ORIGIN = "2000-01-01 00:00:00+00"  # UTC hours, like time_bucket
_GOOD = "r.quality <> 'bad' AND r.value IS NOT NULL"

_TAKE_SQL = """
CREATE TEMP TABLE rollup_touched ON COMMIT DROP AS
WITH taken AS (
    DELETE FROM rollup_queue WHERE id IN (
        SELECT id FROM rollup_queue WHERE queued_at <= now() - %(ripe)s ORDER BY id LIMIT %(n)s)
    RETURNING sensor_id, hour
)
SELECT DISTINCT sensor_id, hour FROM taken
"""

_HOURLY_SQL = f"""
INSERT INTO readings_hourly AS h (sensor_id, bucket, samples, min_value, avg_value, max_value)
SELECT t.sensor_id, t.hour, count(*), min(r.value), avg(r.value), max(r.value)
FROM rollup_touched t
JOIN readings r ON r.sensor_id = t.sensor_id
    AND r.time >= t.hour AND r.time < t.hour + interval '1 hour' AND {_GOOD}
GROUP BY t.sensor_id, t.hour
"""

_HOURLY_CLEAR_SQL = """
DELETE FROM readings_hourly h USING rollup_touched t
WHERE h.sensor_id = t.sensor_id AND h.bucket = t.hour
"""

# The site's zone: the sensor's mount, else the device's location, else its gateway's site.
_DAYS_SQL = f"""
CREATE TEMP TABLE rollup_days ON COMMIT DROP AS
WITH zoned AS (
    SELECT t.sensor_id, t.hour, coalesce(
        (SELECT si.timezone FROM sensors s JOIN locations l ON l.location_id = s.location_id
         JOIN sites si ON si.site_id = l.site_id WHERE s.sensor_id = t.sensor_id),
        (SELECT si.timezone FROM devices d JOIN locations l ON l.location_id = d.location_id
         JOIN sites si ON si.site_id = l.site_id WHERE d.device_id = t.sensor_id),
        (SELECT si.timezone FROM devices d JOIN gateways g ON g.gateway_id = d.gateway_id
         JOIN sites si ON si.site_id = g.site_id WHERE d.device_id = t.sensor_id),
        'UTC') AS tz
    FROM (SELECT DISTINCT sensor_id, hour FROM rollup_touched) t
), dated AS (
    SELECT DISTINCT z.sensor_id, z.tz, x.local_date
    FROM zoned z, LATERAL (VALUES ((z.hour AT TIME ZONE z.tz)::date),
        (((z.hour + interval '1 hour' - interval '1 microsecond') AT TIME ZONE z.tz)::date))
        AS x(local_date)
), bounded AS (
    SELECT sensor_id, tz, local_date,
           local_date::timestamp AT TIME ZONE tz AS day_start,
           (local_date + 1)::timestamp AT TIME ZONE tz AS day_end
    FROM dated
)
SELECT b.*,
       CASE WHEN date_bin('1 hour', day_start, '{_ORIGIN}') = day_start THEN day_start
            ELSE date_bin('1 hour', day_start, '{_ORIGIN}') + interval '1 hour' END AS first_hour,
       date_bin('1 hour', day_end, '{_ORIGIN}') AS end_hour
FROM bounded b
"""

_DAILY_SQL = f"""
WITH parts AS (
    SELECT d.sensor_id, d.day_start, h.samples, h.min_value, h.avg_value * h.samples AS total,
           h.max_value
    FROM rollup_days d JOIN readings_hourly h ON h.sensor_id = d.sensor_id
        AND h.bucket >= d.first_hour AND h.bucket < d.end_hour
    UNION ALL
    SELECT d.sensor_id, d.day_start, 1, r.value, r.value, r.value
    FROM rollup_days d JOIN readings r ON r.sensor_id = d.sensor_id
        AND r.time >= d.day_start AND r.time < d.first_hour AND {_GOOD}
    UNION ALL
    SELECT d.sensor_id, d.day_start, 1, r.value, r.value, r.value
    FROM rollup_days d JOIN readings r ON r.sensor_id = d.sensor_id
        AND r.time >= d.end_hour AND r.time < d.day_end AND {_GOOD}
)
INSERT INTO readings_daily (sensor_id, bucket, samples, min_value, avg_value, max_value,
                            local_date, time_zone)
SELECT p.sensor_id, p.day_start, sum(p.samples), min(p.min_value),
       sum(p.total) / nullif(sum(p.samples), 0), max(p.max_value), d.local_date, d.tz
FROM parts p JOIN rollup_days d ON d.sensor_id = p.sensor_id AND d.day_start = p.day_start
GROUP BY p.sensor_id, p.day_start, d.local_date, d.tz
"""

_DAILY_CLEAR_SQL = """
DELETE FROM readings_daily x USING rollup_days d
WHERE x.sensor_id = d.sensor_id AND x.bucket = d.day_start
"""


@dataclass(frozen=True)
class RollupResult:
    method: str
    """'tables' (this job keeps hours and days) or 'continuous_aggregate' (TimescaleDB keeps
    the hours, this job the local days)."""
    hours: int
    """(sensor, hour) buckets taken from the queue."""
    days: int
    """(sensor, local day) rows recomputed."""
    rounds: int


async def hourly_is_table(conn: AsyncConnection[TupleRow]) -> bool:
    """What exists decides: a plain table (this job keeps it) or a view (a continuous aggregate)."""
    cur = await conn.execute(
        "SELECT relkind FROM pg_class WHERE oid = to_regclass('readings_hourly')"
    )
    row = await cur.fetchone()
    return row is not None and row[0] in {"r", "p"}


async def refresh_rollups(
    conn: AsyncConnection[TupleRow],
    now: datetime,
    settle: timedelta,
    *,
    round_size: int = 5000,
) -> RollupResult:
    """Takes the queue in rounds of ``round_size`` buckets until it is empty (or not ripe).

    ``now`` is the scheduler's time (unused: queue ripeness is judged by the database clock).
    """
    del now
    tables = await hourly_is_table(conn)
    await conn.commit()
    ripe = timedelta(0) if tables else settle
    hours = days = rounds = 0
    while True:
        async with conn.transaction():
            taken = await conn.execute(_TAKE_SQL, {"ripe": ripe, "n": round_size})
            if taken.rowcount == 0:
                await conn.execute("DROP TABLE rollup_touched")
                break
            # Clear, then recompute: a bucket left without good readings loses its row. Readers
            # see the old rows or the new ones, never the gap (one transaction).
            if tables:
                await conn.execute(_HOURLY_CLEAR_SQL)
                await conn.execute(_HOURLY_SQL)
            dated = await conn.execute(_DAYS_SQL)
            await conn.execute(_DAILY_CLEAR_SQL)
            await conn.execute(_DAILY_SQL)
        hours += taken.rowcount
        days += dated.rowcount
        rounds += 1
    return RollupResult("tables" if tables else "continuous_aggregate", hours, days, rounds)


async def queue_touched(conn: AsyncConnection[TupleRow], records: Iterable[Sequenced]) -> int:
    """Queues the (sensor, UTC hour) buckets ``records``' readings fall in; ingest calls this in
    the batch's transaction. Returns the number of buckets queued."""
    hours = sorted(
        {
            (r.sensor_id, r.time.astimezone(UTC).replace(minute=0, second=0, microsecond=0))
            for r in (item.record for item in records)
            if isinstance(r, Reading)
        }
    )
    if hours:
        await conn.execute(
            "INSERT INTO rollup_queue (sensor_id, hour)"
            " SELECT * FROM unnest(%s::text[], %s::timestamptz[])",
            ([s for s, _ in hours], [h for _, h in hours]),
        )
    return len(hours)
