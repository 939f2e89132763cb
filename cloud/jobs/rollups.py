"""Hourly and daily rollups of readings per sensor, kept up to date incrementally.

With the Timescale licence, ``readings_hourly`` / ``readings_daily`` are continuous aggregates
and TimescaleDB's policies refresh them (migration 0011); this job then has nothing to do. Else
they are tables and this job upserts them: it finds readings *stored* since its last run
(``stored_at``, arrival order, so a logger's late backlog is folded in whatever its device time)
and recomputes every (sensor, hour) they touch from the readings, then every (sensor, day) from
the hours. Recomputing touched buckets, rather than adding deltas, makes a re-run harmless.

Rows are read only up to ``now - settle``: ``stored_at`` is the ingest transaction's start, so a
row may become visible a little after a later-stamped one; ``settle`` must exceed the longest
ingest transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from cloud.storage.capabilities import probe

_ORIGIN = "2000-01-01 00:00:00+00"  # buckets aligned on UTC hours and days, like time_bucket

_HOURLY_SQL = f"""
WITH touched AS (
    SELECT DISTINCT sensor_id, date_bin('1 hour', time, '{_ORIGIN}') AS bucket
    FROM readings
    WHERE stored_at > coalesce(%(since)s::timestamptz, '-infinity') AND stored_at <= %(until)s
)
INSERT INTO readings_hourly AS h (sensor_id, bucket, samples, min_value, avg_value, max_value)
SELECT t.sensor_id, t.bucket, count(r.value), min(r.value), avg(r.value), max(r.value)
FROM touched t
JOIN readings r ON r.sensor_id = t.sensor_id
    AND r.time >= t.bucket AND r.time < t.bucket + interval '1 hour'
    AND r.quality <> 'bad' AND r.value IS NOT NULL
GROUP BY t.sensor_id, t.bucket
ON CONFLICT (sensor_id, bucket) DO UPDATE
SET samples = EXCLUDED.samples, min_value = EXCLUDED.min_value,
    avg_value = EXCLUDED.avg_value, max_value = EXCLUDED.max_value
RETURNING h.sensor_id, date_bin('1 day', h.bucket, '{_ORIGIN}')
"""

_DAILY_SQL = """
WITH touched AS (
    SELECT DISTINCT sensor_id, day FROM unnest(%(sensors)s::text[], %(days)s::timestamptz[])
        AS u(sensor_id, day)
)
INSERT INTO readings_daily (sensor_id, bucket, samples, min_value, avg_value, max_value)
SELECT t.sensor_id, t.day, sum(h.samples), min(h.min_value),
       sum(h.avg_value * h.samples) / nullif(sum(h.samples), 0), max(h.max_value)
FROM touched t
JOIN readings_hourly h ON h.sensor_id = t.sensor_id
    AND h.bucket >= t.day AND h.bucket < t.day + interval '1 day'
GROUP BY t.sensor_id, t.day
ON CONFLICT (sensor_id, bucket) DO UPDATE
SET samples = EXCLUDED.samples, min_value = EXCLUDED.min_value,
    avg_value = EXCLUDED.avg_value, max_value = EXCLUDED.max_value
"""


@dataclass(frozen=True)
class RollupResult:
    method: str
    """'continuous_aggregates' (TimescaleDB does it) or 'incremental'."""
    hours: int
    days: int
    stored_through: datetime | None


async def refresh_rollups(
    conn: AsyncConnection[TupleRow], now: datetime, settle: timedelta
) -> RollupResult:
    """One incremental pass (one transaction) over readings stored since the last pass."""
    if (await probe(conn)).native_policies:
        return RollupResult("continuous_aggregates", 0, 0, None)
    until = now - settle
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO rollup_progress (name) VALUES ('readings') ON CONFLICT DO NOTHING"
        )
        cur = await conn.execute(
            "SELECT stored_through FROM rollup_progress WHERE name = 'readings' FOR UPDATE"
        )
        row = await cur.fetchone()
        assert row is not None
        since = row[0]
        if since is not None and since >= until:
            return RollupResult("incremental", 0, 0, since)
        cur = await conn.execute(_HOURLY_SQL, {"since": since, "until": until})
        touched_days = sorted(set(await cur.fetchall()))
        if touched_days:
            await conn.execute(
                _DAILY_SQL,
                {
                    "sensors": [sensor for sensor, _ in touched_days],
                    "days": [day for _, day in touched_days],
                },
            )
        await conn.execute(
            "UPDATE rollup_progress SET stored_through = %s WHERE name = 'readings'", (until,)
        )
    return RollupResult("incremental", cur.rowcount, len(touched_days), until)
