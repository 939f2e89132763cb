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

# Readings are read per UTC day with constant time bounds, so that on a hypertable the planner
# keeps to that day's chunk; a join with the touched buckets as parameters would open every chunk
# of the year for each bucket (measured: seconds per pass with 365 chunks).
_HOURLY_SQL = f"""
INSERT INTO readings_hourly (sensor_id, bucket, samples, min_value, avg_value, max_value)
SELECT r.sensor_id, date_bin('1 hour', r.time, '{_ORIGIN}') AS bucket, count(*),
       min(r.value), avg(r.value), max(r.value)
FROM readings r
WHERE r.sensor_id = ANY(%(sensors)s) AND r.time >= %(lo)s AND r.time < %(hi)s AND {_GOOD}
  AND (r.sensor_id, date_bin('1 hour', r.time, '{_ORIGIN}')) IN (
      SELECT * FROM unnest(%(sensors)s::text[], %(hours)s::timestamptz[]))
GROUP BY r.sensor_id, bucket
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

_DAILY_SQL = """
INSERT INTO readings_daily (sensor_id, bucket, samples, min_value, avg_value, max_value,
                            local_date, time_zone)
SELECT d.sensor_id, d.day_start, sum(h.samples), min(h.min_value),
       sum(h.avg_value * h.samples) / sum(h.samples), max(h.max_value), d.local_date, d.tz
FROM rollup_days d JOIN readings_hourly h ON h.sensor_id = d.sensor_id
    AND h.bucket >= d.first_hour AND h.bucket < d.end_hour
GROUP BY d.sensor_id, d.day_start, d.local_date, d.tz
"""

# Zones off the whole hour: the readings of the partial hours at the day's ends, merged in.
_PARTIAL_DAYS_SQL = """
SELECT sensor_id, day_start, local_date, tz, first_hour, end_hour, day_end FROM rollup_days
WHERE first_hour <> day_start OR end_hour <> day_end
"""

_EDGES_SQL = f"""
SELECT count(*), min(r.value), sum(r.value), max(r.value) FROM readings r
WHERE r.sensor_id = %s AND r.time >= %s AND r.time < %s AND {_GOOD}
"""

_MERGE_SQL = """
INSERT INTO readings_daily AS x (sensor_id, bucket, samples, min_value, avg_value, max_value,
                                 local_date, time_zone)
VALUES (%(sensor)s, %(day)s, %(n)s, %(lo)s, %(total)s / %(n)s, %(hi)s, %(date)s, %(tz)s)
ON CONFLICT (sensor_id, bucket) DO UPDATE
SET samples = x.samples + EXCLUDED.samples,
    min_value = least(x.min_value, EXCLUDED.min_value),
    avg_value = (x.avg_value * x.samples + %(total)s) / (x.samples + EXCLUDED.samples),
    max_value = greatest(x.max_value, EXCLUDED.max_value)
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
                await _hours(conn)
            dated = await conn.execute(_DAYS_SQL)
            await conn.execute(_DAILY_CLEAR_SQL)
            await conn.execute(_DAILY_SQL)
            await _partial_hours(conn)
        hours += taken.rowcount
        days += dated.rowcount
        rounds += 1
    return RollupResult("tables" if tables else "continuous_aggregate", hours, days, rounds)


async def _hours(conn: AsyncConnection[TupleRow]) -> None:
    """Recomputes the touched hours, one UTC day (one chunk) per statement."""
    cur = await conn.execute("SELECT sensor_id, hour FROM rollup_touched ORDER BY hour")
    by_day: dict[object, list[tuple[str, datetime]]] = {}
    for sensor, hour in await cur.fetchall():
        by_day.setdefault(hour.astimezone(UTC).date(), []).append((str(sensor), hour))
    for pairs in by_day.values():
        await conn.execute(
            _HOURLY_SQL,
            {
                "sensors": [s for s, _ in pairs],
                "hours": [h for _, h in pairs],
                "lo": pairs[0][1],
                "hi": pairs[-1][1] + timedelta(hours=1),
            },
        )


async def _partial_hours(conn: AsyncConnection[TupleRow]) -> None:
    cur = await conn.execute(_PARTIAL_DAYS_SQL)
    for sensor, day, date, tz, first_hour, end_hour, day_end in await cur.fetchall():
        for lo, hi in ((day, first_hour), (end_hour, day_end)):
            if lo >= hi:
                continue
            edge = await (await conn.execute(_EDGES_SQL, (sensor, lo, hi))).fetchone()
            if edge is None or not edge[0]:
                continue
            n, low, total, high = edge
            await conn.execute(
                _MERGE_SQL,
                {"sensor": sensor, "day": day, "n": n, "lo": low, "total": total, "hi": high,
                 "date": date, "tz": tz},
            )  # fmt: skip


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
