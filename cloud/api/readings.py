"""Readings of a sensor or of a location over a time range, raw or bucketed.

Bucketed series list every bucket of the range: a bucket without readings is present with
``samples = 0`` and null statistics, so a gap in the data shows as a gap, never as a line drawn
across it. Buckets use ``time_bucket`` where TimescaleDB is installed and ``date_bin`` otherwise,
both aligned on 2000-01-01 UTC, so the two layouts answer the same. Bad-quality readings carry no
trustworthy value and are left out of the statistics (they are listed in raw mode). Buckets of
whole hours over two days or more come from the hourly rollups and the hours not yet rolled up
(``cloud.api.readings_hourly``), with the same figures.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query
from psycopg import AsyncConnection
from psycopg.rows import TupleRow
from pydantic import BaseModel

from cloud.api.deps import Pool
from cloud.api.readings_hourly import hourly_buckets
from cloud.auth.deps import require_role
from cloud.auth.model import Role
from cloud.storage.capabilities import probe
from protocols.records import ID_PATTERN, UtcDatetime

router = APIRouter(
    tags=["readings"], dependencies=[require_role(Role.VIEWER, Role.OPERATOR, Role.QA)]
)

MAX_BUCKETS = 10_000
MAX_BUCKET = timedelta(days=366)
MAX_RAW = 100_000
MAX_LOCATION_POINTS = 200_000
"""At most this many readings or buckets in one answer about a location, all sensors together."""
_ORIGIN = "2000-01-01 00:00:00+00"


class ReadingOut(BaseModel):
    time: datetime
    value: float | None
    unit: str
    quality: str


class BucketOut(BaseModel):
    start: datetime
    samples: int
    min: float | None
    avg: float | None
    max: float | None


class SeriesOut(BaseModel):
    sensor_id: str
    start: datetime
    end: datetime
    bucket: timedelta | None
    readings: list[ReadingOut] | None = None
    """Raw mode: readings in time order, at most ``limit``."""
    truncated: bool = False
    buckets: list[BucketOut] | None = None
    """Bucketed mode: every bucket of [start, end), empty ones included."""


class LocationReadingsOut(BaseModel):
    location_id: str
    series: list[SeriesOut]


# UtcDatetime bounds times to 1970-9999: a bucket computed from an earlier time would not be
# representable in Python and answer a 500.
Start = Annotated[UtcDatetime, Query(description="inclusive, RFC 3339 with offset")]
End = Annotated[UtcDatetime, Query(description="exclusive, RFC 3339 with offset")]
Bucket = Annotated[
    timedelta | None,
    Query(description="bucket width, ISO 8601 duration such as PT15M or PT1H; raw if absent"),
]
Limit = Annotated[int, Query(ge=1, le=MAX_RAW)]
SensorId = Annotated[str, Path(pattern=ID_PATTERN, description="may contain '/'")]
LocationId = Annotated[str, Path(pattern=r"^[^\x00]{1,200}$")]


@router.get("/v1/sensors/{sensor_id:path}/readings", response_model=SeriesOut)
async def sensor_readings(
    sensor_id: SensorId,
    *,
    start: Start,
    end: End,
    pool: Pool,
    bucket: Bucket = None,
    limit: Limit = 10_000,
) -> SeriesOut:
    """One sensor's readings in [start, end)."""
    _check_range(start, end, bucket)
    async with pool.connection() as conn:
        return await _series(conn, sensor_id, start=start, end=end, bucket=bucket, limit=limit)


@router.get("/v1/locations/{location_id}/readings", response_model=LocationReadingsOut)
async def location_readings(
    location_id: LocationId,
    *,
    start: Start,
    end: End,
    pool: Pool,
    bucket: Bucket = None,
    limit: Limit = 10_000,
) -> LocationReadingsOut:
    """The readings of every sensor mounted at a location, one series per sensor."""
    _check_range(start, end, bucket)
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT 1 FROM locations WHERE location_id = %s", (location_id,))
        if await cur.fetchone() is None:
            raise HTTPException(404, f"no location {location_id!r}")
        cur = await conn.execute(
            "SELECT sensor_id FROM sensors WHERE location_id = %(l)s UNION"
            " SELECT device_id FROM devices WHERE location_id = %(l)s AND device_type = 'sensor'"
            " ORDER BY 1",
            {"l": location_id},
        )
        sensors = [str(row[0]) for row in await cur.fetchall()]
        if bucket is not None and len(sensors) * ((end - start) / bucket) > MAX_LOCATION_POINTS:
            raise HTTPException(
                422,
                f"{len(sensors)} sensors × the buckets of the range exceed"
                f" {MAX_LOCATION_POINTS}; widen the bucket or shorten the range",
            )
        # Raw readings are shared out: each series is cut (truncated=true) at its share.
        share = max(1, min(limit, MAX_LOCATION_POINTS // max(len(sensors), 1)))
        series = [
            await _series(conn, s, start=start, end=end, bucket=bucket, limit=share)
            for s in sensors
        ]
    return LocationReadingsOut(location_id=location_id, series=series)


def _check_range(start: datetime, end: datetime, bucket: timedelta | None) -> None:
    if end <= start:
        raise HTTPException(422, "end must be after start")
    if bucket is None:
        return
    if bucket < timedelta(seconds=1):
        raise HTTPException(422, "bucket must be at least one second")
    if bucket > MAX_BUCKET:
        raise HTTPException(422, f"bucket must be at most {MAX_BUCKET.days} days")
    if (end - start) / bucket > MAX_BUCKETS:
        raise HTTPException(422, f"more than {MAX_BUCKETS} buckets; widen the bucket")


async def _series(
    conn: AsyncConnection[TupleRow],
    sensor_id: str,
    *,
    start: datetime,
    end: datetime,
    bucket: timedelta | None,
    limit: int,
) -> SeriesOut:
    series = SeriesOut(sensor_id=sensor_id, start=start, end=end, bucket=bucket)
    if bucket is None:
        cur = await conn.execute(
            "SELECT time, value, unit, quality FROM readings"
            " WHERE sensor_id = %s AND time >= %s AND time < %s ORDER BY time LIMIT %s",
            (sensor_id, start, end, limit + 1),
        )
        rows = await cur.fetchall()
        series.readings = [
            ReadingOut(time=r[0], value=r[1], unit=r[2], quality=r[3]) for r in rows[:limit]
        ]
        series.truncated = len(rows) > limit
        return series
    series.buckets = await _buckets(conn, sensor_id, start, end, bucket)
    return series


async def _buckets(
    conn: AsyncConnection[TupleRow],
    sensor_id: str,
    start: datetime,
    end: datetime,
    bucket: timedelta,
) -> list[BucketOut]:
    if (await probe(conn)).hypertables:
        bin_ = f"time_bucket(%(width)s::interval, {{}}, origin => '{_ORIGIN}'::timestamptz)"
    else:
        bin_ = f"date_bin(%(width)s::interval, {{}}, '{_ORIGIN}'::timestamptz)"
    rows = await hourly_buckets(conn, sensor_id, start, end, bucket=bucket, bin_=bin_)
    if rows is not None:
        return [BucketOut(start=r[0], samples=r[1], min=r[2], avg=r[3], max=r[4]) for r in rows]
    query = f"""
        WITH agg AS (
            SELECT {bin_.format("time")} AS b, count(value) AS n,
                   min(value) AS lo, avg(value) AS mean, max(value) AS hi
            FROM readings
            WHERE sensor_id = %(sensor)s AND time >= %(start)s AND time < %(end)s
              AND quality <> 'bad' AND value IS NOT NULL
            GROUP BY 1
        )
        SELECT g.b, coalesce(agg.n, 0), agg.lo, agg.mean, agg.hi
        FROM generate_series({bin_.format("%(start)s::timestamptz")},
                             %(end)s::timestamptz - interval '1 microsecond',
                             %(width)s::interval) AS g(b)
        LEFT JOIN agg ON agg.b = g.b
        ORDER BY g.b
    """
    cur = await conn.execute(
        query.encode(), {"sensor": sensor_id, "start": start, "end": end, "width": bucket}
    )
    return [
        BucketOut(start=r[0], samples=r[1], min=r[2], avg=r[3], max=r[4])
        for r in await cur.fetchall()
    ]
