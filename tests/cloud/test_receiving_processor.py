"""Dock-door passages from a gateway batch, through ingest and the processor's default steps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import psycopg
import pytest

from cloud.config import ProcessorSettings
from cloud.ingest.writer import store_batch
from cloud.ledger.chain import verify
from cloud.processing.processor import Processor
from cloud.processing.registry import default_steps
from cloud.receiving.asn import AsnIn
from cloud.receiving.store import create_asn
from cloud.storage.database import make_pool
from protocols.gs1.epc import encode_sgtin96, encode_sscc96
from protocols.records import Direction, PortalPassage
from tests.support.cloud_ingest import batch_with, count, create_gateway
from tests.support.ledger_seed import DOCK, GTIN_A, seed

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 6, 6, 0, tzinfo=UTC)
PALLET = "106141412345678908"
FAST = ProcessorSettings(poll_interval=timedelta(milliseconds=200))


def passage(n: int, direction: Direction, *epcs: str) -> PortalPassage:
    at = T0 + timedelta(minutes=n)
    return PortalPassage(
        passage_id=f"door-1/{n}", door_id=DOCK, reader_id="reader-1", direction=direction,
        started_at=at, ended_at=at + timedelta(seconds=4), epcs=epcs,
    )  # fmt: skip


async def test_a_pallet_is_received_once_through_the_processor(timescale_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
        await seed(conn)
        doc = {
            "site_id": "site-1",
            "reference": "PO-77",
            "containers": [
                {"sscc": PALLET, "contents": [{"gtin": GTIN_A, "lot": "P1", "serials": ["1", "2"]}]}
            ],
        }
        await create_asn(conn, AsnIn.model_validate(doc))
        await conn.commit()
    await create_gateway(timescale_url, site="site-1")
    boot = uuid4()
    pallet = encode_sscc96(PALLET, 7)
    first = batch_with("gw-1", boot, 1, [passage(1, Direction.INBOUND, pallet)])
    again = batch_with(
        "gw-1", boot, 2,
        [passage(2, Direction.INBOUND, pallet, encode_sgtin96(GTIN_A, 1, 7)),
         passage(3, Direction.OUTBOUND, encode_sgtin96(GTIN_A, 2, 7))],
    )  # fmt: skip
    async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
        await store_batch(conn, first)
        await store_batch(conn, again)
        await store_batch(conn, first)  # a resend changes nothing
    async with make_pool(timescale_url, max_size=2) as pool:
        processor = Processor(pool, default_steps(), FAST, listen_url=timescale_url)
        assert await processor.drain() == 2
    assert await count(timescale_url, "receipts") == 3
    assert await count(timescale_url, "ledger_entries", "movement = 'receive'") == 2
    assert await count(timescale_url, "ledger_entries", "movement = 'issue'") == 1
    async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
        cur = await conn.execute("SELECT outcome FROM receipts ORDER BY seq")
        assert [r[0] for r in await cur.fetchall()] == ["complete", "nothing", "complete"]
        cur = await conn.execute("SELECT sum(quantity) FROM balances")
        assert await cur.fetchone() == (1,)
        assert (await verify(conn)).ok
