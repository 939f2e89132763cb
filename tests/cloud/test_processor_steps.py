"""The processor: steps see each batch once, in seq order, effects in one transaction."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from uuid import UUID, uuid4

import psycopg
import pytest
from psycopg import AsyncConnection
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

from cloud.config import ProcessorSettings
from cloud.ingest.writer import store_batch
from cloud.processing.processor import Processor
from cloud.processing.steps import ProcessingBatch, Step
from cloud.storage.database import make_pool
from protocols.records import DeviceState, Reading, Record
from tests.support.cloud_ingest import T0, batch_of, batch_with, count, create_gateway, status

pytestmark = pytest.mark.integration

FAST = ProcessorSettings(
    poll_interval=timedelta(milliseconds=200),
    retry_initial=timedelta(milliseconds=50),
    retry_max=timedelta(milliseconds=200),
    reconnect_delay=timedelta(milliseconds=100),
)


@dataclass
class Recorder:
    """A step that writes one effect row per record, so replays would show as duplicates."""

    name: str = "recorder"
    seen: list[tuple[str, int, int]] = field(default_factory=list)

    async def apply(self, conn: AsyncConnection[TupleRow], batch: ProcessingBatch) -> None:
        self.seen.append((batch.gateway_id, batch.first_seq, batch.last_seq))
        assert [item.seq for item in batch.records] == list(
            range(batch.first_seq, batch.last_seq + 1)
        )
        await conn.execute(
            "INSERT INTO effects (gateway_id, boot_id, seq) SELECT %s, %s, s"
            " FROM generate_series(%s::bigint, %s::bigint) s",
            (batch.gateway_id, batch.boot_id, batch.first_seq, batch.last_seq),
        )


@dataclass
class FailsOnce:
    """Fails the first time it sees seq ``at``, after its effect was written."""

    at: int
    name: str = "fails-once"
    failed: bool = False

    async def apply(self, conn: AsyncConnection[TupleRow], batch: ProcessingBatch) -> None:
        await conn.execute(
            "INSERT INTO effects VALUES ('fails-once', %s, %s)", (batch.boot_id, batch.first_seq)
        )
        if not self.failed and batch.first_seq <= self.at <= batch.last_seq:
            self.failed = True
            raise RuntimeError("step crashed")


@pytest.fixture
async def pool(timescale_url: str) -> AsyncIterator[AsyncConnectionPool[AsyncConnection[TupleRow]]]:
    async with await psycopg.AsyncConnection.connect(timescale_url, autocommit=True) as conn:
        await conn.execute(
            "CREATE TABLE effects (gateway_id text, boot_id uuid, seq bigint,"
            " UNIQUE (gateway_id, boot_id, seq))"
        )
    pool = make_pool(timescale_url, max_size=6)
    async with pool:
        yield pool


async def _store(url: str, *batches: object) -> None:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        for batch in batches:
            await store_batch(conn, batch)  # type: ignore[arg-type]


def _processor(
    pool: AsyncConnectionPool[AsyncConnection[TupleRow]], url: str, *steps: Step
) -> Processor:
    return Processor(pool, list(steps), FAST, listen_url=url)


async def test_batches_are_processed_in_seq_order_once(
    timescale_url: str, pool: AsyncConnectionPool[AsyncConnection[TupleRow]]
) -> None:
    await create_gateway(timescale_url)
    boot = uuid4()
    await _store(timescale_url, *(batch_of("gw-1", boot, 1 + 10 * i, 10) for i in range(5)))
    recorder = Recorder()
    processor = _processor(pool, timescale_url, recorder)
    assert await processor.drain() == 5
    assert await processor.drain() == 0
    assert recorder.seen == [("gw-1", 1 + 10 * i, 10 + 10 * i) for i in range(5)]
    assert await count(timescale_url, "effects") == 50
    assert await count(timescale_url, "processor_streams", "processed_through = 50") == 1
    assert await count(timescale_url, "ingest_batches", "processed_at IS NULL") == 0


async def test_a_failing_step_rolls_back_and_the_stream_waits(
    timescale_url: str, pool: AsyncConnectionPool[AsyncConnection[TupleRow]]
) -> None:
    await create_gateway(timescale_url)
    await create_gateway(timescale_url, "gw-2")
    boot, other = UUID(int=1), UUID(int=2)
    await _store(timescale_url, batch_of("gw-1", boot, 1, 5), batch_of("gw-1", boot, 6, 5),
                 batch_of("gw-2", other, 1, 5))  # fmt: skip
    recorder = Recorder()
    patient = FAST.model_copy(update={"retry_initial": timedelta(milliseconds=600)})
    processor = Processor(pool, [FailsOnce(at=6), recorder], patient, listen_url=timescale_url)
    await processor.drain()
    # gw-1's second batch failed: its effects rolled back, the failure is recorded, gw-2 went on.
    assert await count(timescale_url, "effects", "gateway_id = 'gw-1'") == 5
    assert await count(timescale_url, "effects", "gateway_id = 'gw-2'") == 5
    assert (
        await count(
            timescale_url, "processor_streams", "failures = 1 AND last_error LIKE '%step crashed%'"
        )
        == 1
    )
    assert (
        await count(
            timescale_url, "processor_streams", "gateway_id = 'gw-1' AND processed_through = 5"
        )
        == 1
    )
    await asyncio.sleep(0.7)  # past the retry time
    await processor.drain()
    assert await count(timescale_url, "effects", "gateway_id = 'gw-1'") == 10
    assert await count(timescale_url, "effects", "gateway_id = 'fails-once'") == 3
    assert (
        await count(timescale_url, "processor_streams", "failures = 0 AND last_error IS NULL") == 2
    )


async def test_two_processors_share_streams_without_overlap(
    timescale_url: str, pool: AsyncConnectionPool[AsyncConnection[TupleRow]]
) -> None:
    boots = {f"gw-{g}": uuid4() for g in range(4)}
    for gateway in boots:
        await create_gateway(timescale_url, gateway)
    await _store(
        timescale_url, *(batch_of(g, b, 1 + 5 * i, 5) for i in range(6) for g, b in boots.items())
    )
    first, second = Recorder(), Recorder()
    a = _processor(pool, timescale_url, first)
    b = _processor(pool, timescale_url, second)
    await asyncio.gather(a.drain(), b.drain())
    # UNIQUE on effects would have failed a double application; each stream stayed in order.
    assert await count(timescale_url, "effects") == 4 * 30
    for gateway in boots:
        seen = sorted(s for g, s, _ in first.seen + second.seen if g == gateway)
        assert seen == [1 + 5 * i for i in range(6)]


async def test_run_wakes_on_notify_and_stops_cleanly(
    timescale_url: str, pool: AsyncConnectionPool[AsyncConnection[TupleRow]]
) -> None:
    await create_gateway(timescale_url)
    boot = uuid4()
    recorder = Recorder()
    slow_poll = ProcessorSettings(poll_interval=timedelta(seconds=60))
    processor = Processor(pool, [recorder], slow_poll, listen_url=timescale_url)
    stop = asyncio.Event()
    async with asyncio.TaskGroup() as group:
        group.create_task(processor.run(stop))
        await asyncio.sleep(0.3)  # listening
        await _store(timescale_url, batch_of("gw-1", boot, 1, 3))
        for _ in range(100):
            if recorder.seen:
                break
            await asyncio.sleep(0.02)
        stop.set()
    assert recorder.seen == [("gw-1", 1, 3)]


async def test_devices_follow_readings_and_status(
    timescale_url: str, pool: AsyncConnectionPool[AsyncConnection[TupleRow]]
) -> None:
    await create_gateway(timescale_url)
    boot = uuid4()
    late = T0 + timedelta(hours=1)
    records: list[Record] = [
        Reading(sensor_id="s1", time=late, value=5.0, received_at=late),
        Reading(sensor_id="s1", time=T0, value=5.0, received_at=late),  # older backlog
        status("s2", DeviceState.ONLINE, T0),
        status("s2", DeviceState.OFFLINE, late),
    ]
    await _store(timescale_url, batch_with("gw-1", boot, 1, records))
    await _store(
        timescale_url, batch_with("gw-1", boot, 5, [status("s2", DeviceState.DEGRADED, T0)])
    )
    await _processor(pool, timescale_url).drain()
    async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
        cur = await conn.execute(
            "SELECT device_id, device_type, last_seen_at, last_state, state_at"
            " FROM devices ORDER BY 1"
        )
        rows = await cur.fetchall()
    assert rows == [
        ("s1", "sensor", late, None, None),
        ("s2", "sensor", T0, "offline", late),  # offline is not "seen"; an older status loses
    ]
