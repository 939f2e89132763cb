"""Bucketed readings of an hour or more from the hourly rollups, exact to the last reading.

A year of one sensor in hourly buckets read from ``readings`` aggregates every raw reading of the
year across 365 chunks (``bench/scale.py``: p95 1.5 s at 2 M and at 10 M readings). The rollup
job keeps ``readings_hourly`` for every (sensor, UTC hour) ingest queued, and deletes a queue row
in the transaction that recomputes its hour, so at any moment an hour is either queued (its
rollup may be stale: read it from ``readings``) or rolled up (its row is exact). This module
reads whole UTC hours inside the range from ``readings_hourly`` except the queued ones, and the
queued hours and the partial hours at the range's ends from ``readings``, then merges them per
bucket. The statistics are the same as from raw readings (bad-quality readings left out); the
mean is the sample-weighted mean of the hours' means.

Used only where it pays and is exact: buckets a whole number of hours, a range of at least two
days, ``readings_hourly`` a table kept by the job (not a continuous aggregate, which lags by its
own refresh policy), and few raw ranges to read.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from cloud.jobs.rollups import hourly_is_table

HOUR = timedelta(hours=1)
MIN_SPAN = timedelta(days=2)
"""Shorter ranges are cheap from raw readings."""
MAX_RAW_RANGES = 48
"""More queued hours than this (the rollup job is behind): read the range from raw readings."""

_GOOD = "quality <> 'bad' AND value IS NOT NULL"


def _floor_hour(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _ceil_hour(t: datetime) -> datetime:
    floor = _floor_hour(t)
    return floor if floor == t else floor + HOUR


def raw_ranges(
    start: datetime, end: datetime, pending: list[datetime]
) -> list[tuple[datetime, datetime]]:
    """The parts of [start, end) to read from ``readings``: the partial hours at both ends and
    the queued hours, adjacent ones merged.

    >>> t = datetime(2026, 1, 1, tzinfo=UTC)
    >>> raw_ranges(t + timedelta(minutes=30), t + timedelta(days=3), [t + 5 * HOUR, t + 6 * HOUR])
    ... # doctest: +NORMALIZE_WHITESPACE
    [(datetime.datetime(2026, 1, 1, 0, 30, tzinfo=datetime.timezone.utc),
      datetime.datetime(2026, 1, 1, 1, 0, tzinfo=datetime.timezone.utc)),
     (datetime.datetime(2026, 1, 1, 5, 0, tzinfo=datetime.timezone.utc),
      datetime.datetime(2026, 1, 1, 7, 0, tzinfo=datetime.timezone.utc))]
    """
    first, last = _ceil_hour(start), _floor_hour(end)
    parts = [(start, first), *((h, h + HOUR) for h in sorted(pending)), (last, end)]
    merged: list[tuple[datetime, datetime]] = []
    for lo, hi in parts:
        if hi <= lo:
            continue
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
        else:
            merged.append((lo, hi))
    return merged


async def hourly_buckets(
    conn: AsyncConnection[TupleRow],
    sensor_id: str,
    start: datetime,
    end: datetime,
    *,
    bucket: timedelta,
    bin_: str,
) -> list[tuple[Any, ...]] | None:
    """Rows (bucket start, samples, min, avg, max) for every bucket of [start, end), or None when
    this range is not served from the rollups (the caller reads raw readings).

    ``bin_`` is the caller's bucketing expression with ``{}`` for the time and ``%(width)s``."""
    if bucket % HOUR or end - start < MIN_SPAN or not await hourly_is_table(conn):
        return None
    first, last = _ceil_hour(start), _floor_hour(end)
    cur = await conn.execute(
        "SELECT DISTINCT hour FROM rollup_queue WHERE sensor_id = %s AND hour >= %s AND hour < %s",
        (sensor_id, first, last),
    )
    pending = [row[0] for row in await cur.fetchall()]
    ranges = raw_ranges(start, end, pending)
    if len(ranges) > MAX_RAW_RANGES:
        return None
    params: dict[str, object] = {
        "sensor": sensor_id, "start": start, "end": end, "width": bucket,
        "first": first, "last": last, "pending": pending,
    }  # fmt: skip
    raw_parts = []
    for i, (lo, hi) in enumerate(ranges):
        params[f"lo{i}"], params[f"hi{i}"] = lo, hi
        # one statement per range with its own bounds, so a hypertable opens only its chunks
        raw_parts.append(
            f"SELECT {bin_.format('time')} AS b, count(value) AS n, min(value) AS lo,"
            f" sum(value) AS total, max(value) AS hi FROM readings"
            f" WHERE sensor_id = %(sensor)s AND time >= %(lo{i})s AND time < %(hi{i})s"
            f" AND {_GOOD} GROUP BY 1"
        )
    hourly = (
        f"SELECT {bin_.format('bucket')} AS b, samples AS n, min_value AS lo,"
        " avg_value * samples AS total, max_value AS hi FROM readings_hourly"
        " WHERE sensor_id = %(sensor)s AND bucket >= %(first)s AND bucket < %(last)s"
        " AND bucket <> ALL(%(pending)s::timestamptz[])"
    )
    query = f"""
        WITH parts AS ({" UNION ALL ".join([hourly, *raw_parts])}),
        agg AS (
            SELECT b, sum(n)::bigint AS n, min(lo) AS lo, sum(total) / sum(n)::float8 AS mean,
                   max(hi) AS hi
            FROM parts GROUP BY b
        )
        SELECT g.b, coalesce(agg.n, 0), agg.lo, agg.mean, agg.hi
        FROM generate_series({bin_.format("%(start)s::timestamptz")},
                             %(end)s::timestamptz - interval '1 microsecond',
                             %(width)s::interval) AS g(b)
        LEFT JOIN agg ON agg.b = g.b
        ORDER BY g.b
    """
    cur = await conn.execute(query.encode(), params)
    return list(await cur.fetchall())
