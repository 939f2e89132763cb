"""Chunk creation is bounded: the issue's batch of readings on thousands of different days is
refused as 422 with the reason (it used to fail with "out of shared memory", answered 503 and
resent for ever), while a batch at the default bound, every chunk new, is stored in one go."""

from __future__ import annotations

from datetime import timedelta
from uuid import uuid4

import pytest

from protocols.records import Reading, Record, TagRead
from tests.support.cloud_ingest import T0, app_client, batch_with, count, create_gateway, post

pytestmark = pytest.mark.integration


def _day(d: int) -> Reading:
    at = T0 - timedelta(days=d, hours=1)
    return Reading(sensor_id="logger-1/t", time=at, value=5.0, received_at=at)


async def test_a_backlog_on_thousands_of_days_is_refused_as_422_not_503(timescale_url: str) -> None:
    gateway = await create_gateway(timescale_url)
    backlog = batch_with("gw-1", uuid4(), 1, [_day(d) for d in range(3000)])
    async with app_client(timescale_url) as client:
        answer = await post(client, gateway, backlog)
    assert answer.status_code == 422, answer.text
    assert "Retry-After" not in answer.headers
    assert "would write into 3000 chunks (3000 of readings); at most 64" in answer.json()["error"]
    assert await count(timescale_url, "readings") == 0
    assert await count(timescale_url, "timescaledb_information.chunks") == 0  # none created


async def test_a_batch_at_the_default_bound_creates_its_chunks_and_is_stored(
    timescale_url: str,
) -> None:
    gateway = await create_gateway(timescale_url)
    at = T0 - timedelta(hours=2)
    tags: list[Record] = [
        TagRead(reader_id="r1", antenna=1, epc="3034F87A3C000000000003E8",
                first_seen=at - timedelta(days=d), last_seen=at - timedelta(days=d),
                received_at=at)
        for d in range(4)
    ]  # fmt: skip
    records: list[Record] = [*(_day(d) for d in range(60)), *tags]
    async with app_client(timescale_url) as client:
        answer = await post(client, gateway, batch_with("gw-1", uuid4(), 1, records))
        assert answer.status_code == 200, answer.text
        one_more = [*records, _day(60)]  # 65 chunks
        refused = await post(client, gateway, batch_with("gw-1", uuid4(), 1, one_more))
        assert refused.status_code == 422
    assert await count(timescale_url, "readings") == 60
    assert await count(timescale_url, "tag_reads") == 4
    assert await count(timescale_url, "timescaledb_information.chunks",
                       "hypertable_name IN ('readings', 'tag_reads')") == 64  # fmt: skip
