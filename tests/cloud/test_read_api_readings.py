"""Read API: readings raw and bucketed (gaps stay gaps), per sensor and per location; devices."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from uuid import uuid4

import psycopg
import pytest

from cloud.config import ProcessorSettings
from cloud.ingest.writer import store_batch
from cloud.jobs.stale import detect_stale
from cloud.processing.processor import Processor
from cloud.storage.database import make_pool
from protocols.records import DeviceState, Quality, Reading, Record
from tests.support.cloud_ingest import (
    T0,
    app_client,
    batch_with,
    create_gateway,
    status,
    viewer_headers,
)

pytestmark = pytest.mark.integration


def _at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def _r(
    sensor: str, minutes: float, value: float | None, quality: Quality = Quality.GOOD
) -> Reading:
    return Reading(sensor_id=sensor, time=_at(minutes), value=value, quality=quality,
                   received_at=_at(minutes))  # fmt: skip


async def _load(url: str, records: Sequence[Record]) -> None:
    await create_gateway(url)
    async with await psycopg.AsyncConnection.connect(url) as conn:
        await store_batch(conn, batch_with("gw-1", uuid4(), 1, records))
    pool = make_pool(url, max_size=2)
    async with pool:
        await Processor(pool, [], ProcessorSettings(), listen_url=url).drain()


async def test_buckets_show_gaps_as_gaps_in_both_layouts(database_url: str) -> None:
    await _load(database_url, [
        _r("s1", 5, 4.0), _r("s1", 35, 6.0), _r("s1", 50, None, Quality.BAD),
        _r("s1", 125, 3.0), _r("s2", 10, 99.0),
    ])  # fmt: skip
    headers = await viewer_headers(database_url)
    async with app_client(database_url) as client:
        response = await client.get(
            "/v1/sensors/s1/readings",
            params={"start": _at(0).isoformat(), "end": _at(180).isoformat(), "bucket": "PT1H"},
            headers=headers,
        )
    assert response.status_code == 200, response.text
    buckets = response.json()["buckets"]
    assert [(b["samples"], b["min"], b["avg"], b["max"]) for b in buckets] == [
        (2, 4.0, 5.0, 6.0),
        (0, None, None, None),
        (1, 3.0, 3.0, 3.0),
    ]
    assert [datetime.fromisoformat(b["start"]) for b in buckets] == [_at(0), _at(60), _at(120)]


async def test_buckets_align_on_the_bucket_grid(timescale_url: str) -> None:
    await _load(timescale_url, [_r("s1", 14, 1.0), _r("s1", 16, 2.0)])
    headers = await viewer_headers(timescale_url)
    async with app_client(timescale_url) as client:
        body = (await client.get(
            "/v1/sensors/s1/readings",
            params={"start": _at(10).isoformat(), "end": _at(25).isoformat(), "bucket": "PT5M"},
            headers=headers,
        )).json()  # fmt: skip
    assert [(b["start"][11:16], b["samples"]) for b in body["buckets"]] == [
        ("00:10", 1), ("00:15", 1), ("00:20", 0),
    ]  # fmt: skip


async def test_raw_readings_are_limited_and_say_so(timescale_url: str) -> None:
    await _load(timescale_url, [_r("s1", m, 4.0) for m in range(10)] + [_r("fridge-1/t", 0, 5.0)])
    headers = await viewer_headers(timescale_url)
    params: dict[str, str | int] = {
        "start": _at(0).isoformat(),
        "end": _at(60).isoformat(),
        "limit": 4,
    }
    async with app_client(timescale_url) as client:
        body = (await client.get("/v1/sensors/s1/readings", params=params, headers=headers)).json()
        anonymous = await client.get("/v1/sensors/s1/readings", params=params)
        slashed = await client.get(
            "/v1/sensors/fridge-1/t/readings", params=params, headers=headers
        )
        backwards = await client.get(
            "/v1/sensors/s1/readings",
            params={"start": _at(60).isoformat(), "end": _at(0).isoformat()},
            headers=headers,
        )
        too_many = await client.get(
            "/v1/sensors/s1/readings",
            params={"start": _at(0).isoformat(), "end": _at(60 * 24 * 365).isoformat(),
                    "bucket": "PT1M"},
            headers=headers,
        )  # fmt: skip
    assert [r["time"][11:16] for r in body["readings"]] == ["00:00", "00:01", "00:02", "00:03"]
    assert [r["value"] for r in slashed.json()["readings"]] == [5.0]
    assert body["truncated"] is True
    assert anonymous.status_code == 401
    assert backwards.status_code == 422
    assert too_many.status_code == 422


async def test_location_readings_cover_its_sensors(timescale_url: str) -> None:
    await _load(timescale_url, [_r("s1", 1, 4.0), _r("s2", 2, 5.0), _r("s3", 3, 6.0)])
    async with await psycopg.AsyncConnection.connect(timescale_url, autocommit=True) as conn:
        await conn.execute("INSERT INTO sites (site_id, name) VALUES ('site', 'Site')")
        await conn.execute(
            "INSERT INTO locations (location_id, site_id, kind, name)"
            " VALUES ('fridge-a', 'site', 'fridge', 'Fridge A')"
        )
        await conn.execute(
            "INSERT INTO sensors (sensor_id, location_id) VALUES ('s1', 'fridge-a'),"
            " ('s2', 'fridge-a')"
        )
    headers = await viewer_headers(timescale_url)
    params = {"start": _at(0).isoformat(), "end": _at(60).isoformat(), "bucket": "PT1H"}
    async with app_client(timescale_url) as client:
        body = (await client.get("/v1/locations/fridge-a/readings", params=params,
                                 headers=headers)).json()  # fmt: skip
        missing = await client.get("/v1/locations/nowhere/readings", params=params, headers=headers)
    assert [(s["sensor_id"], s["buckets"][0]["avg"]) for s in body["series"]] == [
        ("s1", 4.0), ("s2", 5.0),
    ]  # fmt: skip
    assert missing.status_code == 404


async def test_devices_show_last_seen_state_and_silence(timescale_url: str) -> None:
    await _load(timescale_url, [
        _r("s1", 0, 4.0), _r("s2", 30, 4.0), status("s2", DeviceState.DEGRADED, _at(31)),
    ])  # fmt: skip
    async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
        result = await detect_stale(conn, _at(40), timedelta(minutes=15))
    assert (result.opened, result.closed) == (1, 0)
    headers = await viewer_headers(timescale_url)
    async with app_client(timescale_url) as client:
        listed = (await client.get("/v1/devices", headers=headers)).json()
        one = await client.get("/v1/devices/s2", headers=headers)
        none = await client.get("/v1/devices/nope", headers=headers)
    assert [(d["device_id"], d["silent_since"] is not None) for d in listed] == [
        ("s1", True), ("s2", False),
    ]  # fmt: skip
    assert one.json()["last_state"] == "degraded"
    assert datetime.fromisoformat(one.json()["last_seen_at"]) == _at(31)
    assert none.status_code == 404


@pytest.mark.parametrize(
    ("start", "end", "bucket"),
    [
        # found by schemathesis: a bucket grid before year 1 used to answer 500
        ("0130-11-29T22:54:50+06:28", "1575-01-01T00:46:35.29Z", "P737Y913M26D"),
        ("2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z", "P400D"),
        ("9999-12-31T23:00:00-05:00", "9999-12-31T23:30:00Z", None),
    ],
)
async def test_times_and_buckets_out_of_range_are_refused(
    timescale_url: str, start: str, end: str, bucket: str | None
) -> None:
    headers = await viewer_headers(timescale_url)
    params = {"start": start, "end": end} | ({"bucket": bucket} if bucket else {})
    async with app_client(timescale_url) as client:
        response = await client.get("/v1/sensors/V/readings", params=params, headers=headers)
    assert response.status_code == 422
