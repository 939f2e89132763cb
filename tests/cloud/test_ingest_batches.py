"""POST /v1/batches: stored once, acknowledged after commit, gaps refused with the seq to resend."""

from __future__ import annotations

import gzip
from datetime import timedelta
from uuid import UUID, uuid4

import pytest

from protocols.records import DeadLetter, DeviceState, PortalPassage, Record, TagRead
from tests.support.cloud_ingest import (
    T0,
    app_client,
    batch_of,
    batch_with,
    count,
    create_gateway,
    post,
    status,
)

pytestmark = pytest.mark.integration


async def test_a_batch_is_stored_and_acknowledged(database_url: str) -> None:
    gw = await create_gateway(database_url)
    boot = uuid4()
    async with app_client(database_url) as client:
        response = await post(client, gw, batch_of("gw-1", boot, 1, 50))
    assert response.status_code == 200, response.text
    assert response.json() == {"gateway_id": "gw-1", "boot_id": str(boot), "stored_through": 50}
    assert await count(database_url, "readings") == 50
    assert await count(database_url, "ingest_batches", "first_seq = 1 AND last_seq = 50") == 1
    assert await count(database_url, "gateway_streams", "stored_through = 50") == 1


async def test_resends_and_overlaps_store_nothing_twice(database_url: str) -> None:
    gw = await create_gateway(database_url)
    boot = uuid4()
    async with app_client(database_url) as client:
        first = batch_of("gw-1", boot, 1, 20)
        assert (await post(client, gw, first)).status_code == 200
        # The same batch again, and again with every device time changed: nothing new.
        again = await post(client, gw, first)
        shifted = batch_of("gw-1", boot, 1, 20, shift=timedelta(minutes=3))
        moved = await post(client, gw, shifted)
        # An overlapping batch: 11..30 stores only 21..30.
        overlap = await post(client, gw, batch_of("gw-1", boot, 11, 20))
    assert again.json()["stored_through"] == 20
    assert moved.json()["stored_through"] == 20
    assert overlap.json()["stored_through"] == 30
    assert await count(database_url, "readings") == 30
    assert await count(database_url, "readings", f"time > '{T0 + timedelta(seconds=30)}'") == 0
    assert await count(database_url, "ingest_batches") == 2


async def test_a_gap_is_refused_with_the_seq_to_resend_from(database_url: str) -> None:
    gw = await create_gateway(database_url)
    boot = uuid4()
    async with app_client(database_url) as client:
        await post(client, gw, batch_of("gw-1", boot, 1, 10))
        gap = await post(client, gw, batch_of("gw-1", boot, 15, 5))
        fresh = await post(client, gw, batch_of("gw-1", uuid4(), 3, 5))
    assert gap.status_code == 409
    assert gap.json()["detail"] == [{"expected_seq": 11, "first_seq": 15}]
    assert fresh.status_code == 409  # a new boot starts at 1
    assert fresh.json()["detail"][0]["expected_seq"] == 1
    assert await count(database_url, "readings") == 10
    assert await count(database_url, "gateway_streams") == 1


async def test_reordered_batches_end_in_the_same_rows(database_url: str) -> None:
    gw = await create_gateway(database_url)
    boot = uuid4()
    second = batch_of("gw-1", boot, 11, 10)
    first = batch_of("gw-1", boot, 1, 10)
    async with app_client(database_url) as client:
        early = await post(client, gw, second)
        ok1 = await post(client, gw, first)
        ok2 = await post(client, gw, second)
        late_dup = await post(client, gw, first)
    assert [early.status_code, ok1.status_code, ok2.status_code] == [409, 200, 200]
    assert late_dup.json()["stored_through"] == 20
    assert await count(database_url, "readings") == 20


async def test_every_record_kind_lands_in_its_table(database_url: str) -> None:
    gw = await create_gateway(database_url)
    boot = UUID(int=7)
    records: list[Record] = [
        TagRead(reader_id="dock-1", antenna=1, epc="3074257BF7194E4000001A85", rssi=-52.5,
                first_seen=T0, last_seen=T0 + timedelta(seconds=2), count=3, received_at=T0),
        PortalPassage(passage_id="p-1", door_id="door-1", reader_id="dock-1", direction="in",
                      started_at=T0, ended_at=T0 + timedelta(seconds=5),
                      epcs=("3074257BF7194E4000001A85",)),
        status("fridge-1/t", DeviceState.DEGRADED, T0),
        DeadLetter(source="mqtt:site/fridge", reason="not JSON", raw=b"\xff\x00garbage",
                   received_at=T0),
    ]  # fmt: skip
    async with app_client(database_url) as client:
        response = await post(client, gw, batch_with("gw-1", boot, 1, records))
    assert response.json()["stored_through"] == 4
    for table in ("tag_reads", "portal_passages", "device_status", "dead_letters"):
        assert await count(database_url, table) == 1, table
    assert await count(database_url, "dead_letters", "raw = '\\xff0067617262616765'::bytea") == 1


async def test_plain_json_without_gzip_is_accepted(database_url: str) -> None:
    gw = await create_gateway(database_url)
    body = batch_of("gw-1", uuid4(), 1, 3).model_dump_json().encode()
    async with app_client(database_url) as client:
        plain = await client.post("/v1/batches", content=body, headers=gw.headers)
        double = await client.post(
            "/v1/batches",
            content=gzip.compress(body) + b"junk",
            headers={**gw.headers, "Content-Encoding": "gzip"},
        )
    assert plain.status_code == 200
    assert double.status_code == 400
    assert "after the gzip stream" in double.json()["error"]
