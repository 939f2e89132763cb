"""Bucketed reads of whole hours over days come from the hourly rollups, with the figures raw
readings give: queued (not yet rolled up) hours and the partial hours at the range's ends are
read from ``readings``, in both layouts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import psycopg
import pytest

from cloud.ingest.writer import store_batch
from cloud.jobs.rollups import refresh_rollups
from protocols.records import Quality, Reading
from tests.support.cloud_ingest import T0, app_client, batch_with, create_gateway, viewer_headers

pytestmark = pytest.mark.integration

ORIGIN = datetime(2000, 1, 1, tzinfo=UTC)
SENSOR = "fridge-9/t"


def _reading(at: datetime, value: float, quality: Quality = Quality.GOOD) -> Reading:
    return Reading(sensor_id=SENSOR, time=at, value=value, quality=quality, received_at=at)


async def _store(url: str, readings: list[Reading]) -> None:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        await store_batch(conn, batch_with("gw-1", uuid4(), 1, readings))


def _expected(
    readings: list[Reading], start: datetime, end: datetime, width: timedelta
) -> list[tuple[datetime, int, float | None, float | None, float | None]]:
    bins: dict[datetime, list[float]] = {}
    b = ORIGIN + ((start - ORIGIN) // width) * width
    while b < end:
        bins[b] = []
        b += width
    for r in readings:
        if start <= r.time < end and r.quality is not Quality.BAD and r.value is not None:
            bins[ORIGIN + ((r.time - ORIGIN) // width) * width].append(r.value)
    return [
        (b, len(v), min(v), sum(v) / len(v), max(v)) if v else (b, 0, None, None, None)
        for b, v in bins.items()
    ]


async def test_whole_hour_buckets_over_days_read_the_rollups_and_the_queued_hours(
    database_url: str,
) -> None:
    await create_gateway(database_url)
    start_at = T0 - timedelta(days=4)
    every = [start_at + timedelta(minutes=20 * i) for i in range(4 * 72)]
    readings = [_reading(t, round(2 + (i % 17) * 0.37, 2)) for i, t in enumerate(every)]
    readings += [_reading(start_at + timedelta(hours=30, minutes=5), 99.0, Quality.BAD)]
    await _store(database_url, readings)
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        assert (await refresh_rollups(conn, datetime.now(UTC), timedelta(minutes=2))).hours == 96
        # Served from the rollup: a reading removed from readings behind the job's back (no
        # queue row) still counts in its hour, which raw readings could not answer.
        await conn.execute(
            "DELETE FROM readings WHERE sensor_id = %s AND time = %s",
            (SENSOR, start_at + timedelta(hours=40)),
        )
        await conn.commit()
    # Not yet rolled up: a late reading in an hour already rolled up, and the newest hours.
    late = [
        _reading(start_at + timedelta(days=2, minutes=10), 50.0),
        *(_reading(T0 + timedelta(minutes=m), -1.5) for m in (5, 65, 125)),
    ]
    await _store(database_url, late)
    everything = readings + late
    start, end = start_at + timedelta(minutes=7), T0 + timedelta(hours=2, minutes=47)
    headers = await viewer_headers(database_url)
    async with app_client(database_url) as client:
        for width in (timedelta(hours=1), timedelta(hours=3), timedelta(days=1)):
            answer = await client.get(
                f"/v1/sensors/{SENSOR}/readings", headers=headers,
                params={"start": start.isoformat(), "end": end.isoformat(),
                        "bucket": f"PT{int(width.total_seconds())}S"},
            )  # fmt: skip
            assert answer.status_code == 200, answer.text
            got = [
                (datetime.fromisoformat(b["start"]), b["samples"], b["min"], b["avg"], b["max"])
                for b in answer.json()["buckets"]
            ]
            want = _expected(everything, start, end, width)
            assert [g[:3] + g[4:] for g in got] == [w[:3] + w[4:] for w in want], width
            assert [g[3] for g in got] == [
                None if w[3] is None else pytest.approx(w[3], rel=1e-12) for w in want
            ]
