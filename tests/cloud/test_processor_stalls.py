"""A stuck stream is loud and recoverable; the processor never waits for ingest's row lock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from psycopg import AsyncConnection
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

from cloud.config import ProcessorSettings
from cloud.ingest.writer import store_batch
from cloud.processing.processor import CLAIM_SQL, Processor
from cloud.processing.steps import ProcessingBatch
from cloud.processing.streams import (
    NotFailingError,
    WrongBatchError,
    set_aside,
    stream_states,
)
from cloud.storage.database import Timeouts, make_pool
from tests.support.cloud_ingest import batch_of, count, create_gateway

pytestmark = pytest.mark.integration

QUICK = ProcessorSettings(
    retry_initial=timedelta(milliseconds=200),
    retry_max=timedelta(milliseconds=200),
    stall_after=3,
    timeouts=Timeouts(lock=timedelta(milliseconds=500)),
)
Pool = AsyncConnectionPool[AsyncConnection[TupleRow]]


@dataclass
class Poison:
    """Fails on the batch holding seq ``at`` while ``broken``."""

    at: int
    broken: bool = True
    name: str = "poison"

    async def apply(self, conn: AsyncConnection[TupleRow], batch: ProcessingBatch) -> None:
        if self.broken and batch.first_seq <= self.at <= batch.last_seq:
            raise ValueError(f"cannot judge seq {self.at}")


@pytest.fixture
async def pool(timescale_url: str) -> AsyncIterator[Pool]:
    pool = make_pool(timescale_url, max_size=4)
    async with pool:
        yield pool


async def _three_batches(url: str) -> UUID:
    await create_gateway(url)
    boot = uuid4()
    async with await psycopg.AsyncConnection.connect(url) as conn:
        for first in (1, 6, 11):
            await store_batch(conn, batch_of("gw-1", boot, first, 5))
    return boot


async def _drain_until_stalled(processor: Processor, url: str) -> None:
    for _ in range(20):
        await processor.drain()
        if await count(url, "processor_streams", "stalled_since IS NOT NULL"):
            return
        await asyncio.sleep(0.25)
    raise AssertionError("the stream never stalled")


async def _alerts(url: str, kind: str) -> list[tuple[str, dict[str, object]]]:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cur = await conn.execute(
            "SELECT message, detail FROM alerts WHERE kind = %s ORDER BY alert_id", (kind,)
        )
        return [(str(m), dict(d)) for m, d in await cur.fetchall()]


async def test_a_batch_failing_repeatedly_stalls_its_stream_loudly_once_then_resumes(
    timescale_url: str, pool: Pool
) -> None:
    await _three_batches(timescale_url)
    poison = Poison(at=7)
    processor = Processor(pool, [poison], QUICK, listen_url=timescale_url)
    await _drain_until_stalled(processor, timescale_url)
    for _ in range(2):  # more failures: still one alert for this batch
        await asyncio.sleep(0.25)
        await processor.drain()
    stalled = await _alerts(timescale_url, "stream_stalled")
    assert len(stalled) == 1
    message, detail = stalled[0]
    assert "gw-1" in message
    assert "cannot judge seq 7" in message
    assert detail["batch_id"] == 2
    async with pool.connection() as conn:
        (state,) = await stream_states(conn, stalled_only=True)
    assert state.processed_through == 5
    assert state.failing_batch_id == 2
    assert state.pending_batches == 2
    assert state.failures >= 3
    assert state.last_error is not None
    assert "cannot judge seq 7" in state.last_error
    poison.broken = False  # the cause is fixed (a master-data correction, a deploy)
    await asyncio.sleep(0.25)
    assert await processor.drain() == 2
    assert await count(timescale_url, "processor_streams", "stalled_since IS NULL"
                       " AND failures = 0 AND processed_through = 15") == 1  # fmt: skip
    assert len(await _alerts(timescale_url, "stream_resumed")) == 1


async def test_an_admin_sets_the_stuck_batch_aside_and_later_batches_go_on(
    timescale_url: str, pool: Pool
) -> None:
    boot = await _three_batches(timescale_url)
    processor = Processor(pool, [Poison(at=7)], QUICK, listen_url=timescale_url)
    async with pool.connection() as conn:
        with pytest.raises(NotFailingError):  # a healthy stream cannot lose a batch
            await set_aside(conn, "gw-1", reason="typo", actor="ana")
    await _drain_until_stalled(processor, timescale_url)
    async with pool.connection() as conn:
        with pytest.raises(WrongBatchError, match="that is batch 2"):
            await set_aside(conn, "gw-1", batch_id=3, reason="wrong one", actor="ana")
        done = await set_aside(
            conn, "gw-1", batch_id=2, reason="firmware bug, vendor ticket 42", actor="ana"
        )
    assert (done.boot_id, done.first_seq, done.last_seq, done.record_count) == (boot, 6, 10, 5)
    assert await processor.drain() == 1  # batch 3 went on
    assert await count(timescale_url, "processor_streams", "processed_through = 15") == 1
    assert await count(timescale_url, "quarantined_batches", "batch_id = 2 AND reason ="
                       " 'firmware bug, vendor ticket 42' AND set_aside_by = 'ana'"
                       " AND last_error LIKE '%cannot judge seq 7%'") == 1  # fmt: skip
    assert await count(timescale_url, "readings", "seq BETWEEN 6 AND 10") == 5  # kept
    assert await count(timescale_url, "audit_log", "action = 'set_aside_batch' AND actor = 'ana'"
                       " AND subject = 'batch:2'") == 1  # fmt: skip
    (aside,) = await _alerts(timescale_url, "batch_set_aside")
    assert "seq 6..10" in aside[0]


async def test_the_processor_never_waits_for_the_ingest_row_lock(
    timescale_url: str, pool: Pool
) -> None:
    boot = await _three_batches(timescale_url)
    processor = Processor(pool, [], QUICK, listen_url=timescale_url)
    async with await psycopg.AsyncConnection.connect(timescale_url) as ingest:
        # An ingest transaction of the same stream holds its gateway_streams row.
        await ingest.execute(
            "SELECT 1 FROM gateway_streams WHERE gateway_id = 'gw-1' AND boot_id = %s FOR UPDATE",
            (boot,),
        )
        async with asyncio.timeout(5):
            assert await processor.drain() == 3
        await ingest.rollback()
    assert await count(timescale_url, "processor_streams", "processed_through = 15") == 1
    assert await count(timescale_url, "processor_streams", "failures = 0") == 1


async def test_the_claim_walks_pending_batches_not_200000_streams(timescale_url: str) -> None:
    await _three_batches(timescale_url)
    async with await psycopg.AsyncConnection.connect(timescale_url, autocommit=True) as conn:
        await conn.execute(
            "WITH s AS (INSERT INTO gateway_streams (gateway_id, boot_id, stored_through)"
            " SELECT 'gw-1', gen_random_uuid(), 100 FROM generate_series(1, 200000)"
            " RETURNING gateway_id, boot_id)"
            " INSERT INTO processor_streams (gateway_id, boot_id, processed_through)"
            " SELECT gateway_id, boot_id, 100 FROM s"
        )
        await conn.execute("ANALYZE gateway_streams, processor_streams, ingest_batches")
        cur = await conn.execute(b"EXPLAIN (FORMAT JSON) " + CLAIM_SQL.encode())
        row = await cur.fetchone()
    assert row is not None
    nodes = list(_nodes(row[0][0]["Plan"]))
    assert ("Index Scan", "ingest_batches", "ingest_batches_unprocessed") in nodes
    assert ("Seq Scan", "processor_streams", None) not in nodes
    assert all(relation != "gateway_streams" for _, relation, _ in nodes)  # not even joined


def _nodes(plan: dict[str, Any]) -> Iterator[tuple[str, str | None, str | None]]:
    yield (plan["Node Type"], plan.get("Relation Name"), plan.get("Index Name"))
    for child in plan.get("Plans", []):
        yield from _nodes(child)
