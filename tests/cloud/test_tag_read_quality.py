"""A tag read's quality is stored and rebuilt; records from gateways that do not send it are
'good', as before (an Uptime reader's mapped times are 'uncertain')."""

from __future__ import annotations

import json
from datetime import timedelta
from uuid import uuid4

import psycopg
import pytest

from cloud.processing.rebuild import BatchRow, rebuild
from protocols.records import Quality, TagRead
from tests.support.cloud_ingest import T0, app_client, batch_with, count, create_gateway

pytestmark = pytest.mark.integration


def _read(epc: str, quality: Quality) -> TagRead:
    return TagRead(
        reader_id="dock-1",
        antenna=1,
        epc=epc,
        first_seen=T0,
        last_seen=T0 + timedelta(seconds=1),
        quality=quality,
        received_at=T0 + timedelta(minutes=2),
    )


async def test_quality_is_stored_and_rebuilt_and_defaults_to_good(database_url: str) -> None:
    gw = await create_gateway(database_url)
    boot = uuid4()
    reads = [
        _read("3074257BF7194E4000001A85", Quality.UNCERTAIN),
        _read("3074257BF7194E4000001A86", Quality.GOOD),
    ]
    body = json.loads(batch_with("gw-1", boot, 1, reads).model_dump_json())
    # a good read is sent without the field, as a gateway from before it sends every read
    assert "quality" not in body["records"][1]["record"]
    async with app_client(database_url) as client:
        response = await client.post("/v1/batches", content=json.dumps(body), headers=gw.headers)
    assert response.status_code == 200, response.text
    assert await count(database_url, "tag_reads", "quality = 'uncertain'") == 1
    assert await count(database_url, "tag_reads", "quality = 'good'") == 1
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cur = await conn.execute(
            "SELECT batch_id, gateway_id, boot_id, first_seq, last_seq, record_count,"
            " received_at, time_min, time_max FROM ingest_batches"
        )
        row = await cur.fetchone()
        assert row is not None
        rebuilt = await rebuild(conn, BatchRow(*row))
    assert [item.record for item in rebuilt] == reads
