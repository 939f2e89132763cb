"""The outbox contract, run against every implementation of the ``Outbox`` port."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from edge.clock import ManualClock
from edge.outbox import (
    OutboxClosedError,
    OutboxError,
    OutboxFullError,
    OutboxLimits,
    OverflowPolicy,
    SqliteOutbox,
    decode,
    decode_all,
)
from protocols.records import DeadLetter, Reading
from tests.edge.conftest import OutboxFactory, reading

BIG = OutboxLimits(max_records=1_000_000, max_bytes=1 << 30)


async def test_sequence_numbers_are_contiguous_from_one(outbox_factory: OutboxFactory) -> None:
    outbox = await outbox_factory(BIG)
    assert await outbox.append([reading(1), reading(2), reading(3)]) == 3
    assert await outbox.append([reading(4)]) == 4
    assert await outbox.append([]) == 4
    peeked = await outbox.peek(100, 1 << 20)
    assert [r.seq for r in peeked.records] == [1, 2, 3, 4]
    assert decode_all(peeked.records) == [reading(i) for i in range(1, 5)]
    assert peeked.boot_id == outbox.stats().boot_id


async def test_peek_is_oldest_first_within_limits(outbox_factory: OutboxFactory) -> None:
    outbox = await outbox_factory(BIG)
    await outbox.append([reading(i) for i in range(10)])
    size = len(reading(1).model_dump_json())
    assert [r.seq for r in (await outbox.peek(3, 1 << 20)).records] == [1, 2, 3]
    by_bytes = await outbox.peek(100, len(reading(0).model_dump_json()) + size + size // 2)
    assert [r.seq for r in by_bytes.records] == [1, 2]
    # a single record larger than max_bytes still comes out, alone, so nothing is stuck
    assert [r.seq for r in (await outbox.peek(100, 1)).records] == [1]
    # peek does not remove anything
    assert outbox.stats().records == 10


async def test_ack_deletes_only_what_was_acknowledged(outbox_factory: OutboxFactory) -> None:
    outbox = await outbox_factory(BIG)
    await outbox.append([reading(i) for i in range(10)])
    boot = outbox.stats().boot_id
    assert await outbox.ack(boot, 4) == 4
    assert [r.seq for r in (await outbox.peek(100, 1 << 20)).records] == list(range(5, 11))
    assert await outbox.ack(boot, 4) == 0  # a repeated ack changes nothing
    assert await outbox.ack(boot, 10_000) == 6  # beyond the last: clamps to what exists
    assert outbox.stats().records == 0
    assert outbox.stats().bytes == 0
    assert (await outbox.peek(10, 1000)).records == ()
    assert await outbox.append([reading(11)]) == 11  # numbering continues after acks


async def test_ack_of_another_boot_is_refused(outbox_factory: OutboxFactory) -> None:
    outbox = await outbox_factory(BIG)
    await outbox.append([reading(1)])
    other = await outbox_factory(BIG)
    with pytest.raises(OutboxError, match="boot"):
        await outbox.ack(other.stats().boot_id, 1)
    assert outbox.stats().records == 1
    assert outbox.stats().boot_id != other.stats().boot_id


async def test_records_never_expire_by_age(
    outbox_factory: OutboxFactory, manual_clock: ManualClock
) -> None:
    outbox = await outbox_factory(BIG)
    await outbox.append([reading(1)])
    appended = outbox.stats().oldest_appended_at
    manual_clock.advance(timedelta(days=400).total_seconds())
    await outbox.append([reading(2)])
    assert [r.seq for r in (await outbox.peek(10, 1 << 20)).records] == [1, 2]
    assert outbox.stats().oldest_appended_at == appended


async def test_full_outbox_blocks_append_until_acked(outbox_factory: OutboxFactory) -> None:
    outbox = await outbox_factory(OutboxLimits(max_records=5, max_bytes=1 << 20))
    assert await outbox.append([reading(i) for i in range(4)]) == 4
    blocked = asyncio.create_task(outbox.append([reading(4), reading(5)]))
    await asyncio.sleep(0.05)
    assert not blocked.done()  # back-pressure: the source is not resumed
    assert outbox.stats().full  # back-pressure is on
    assert outbox.stats().records == 4
    await outbox.ack(outbox.stats().boot_id, 1)
    assert await asyncio.wait_for(blocked, 5) == 6
    assert [r.seq for r in (await outbox.peek(10, 1 << 20)).records] == [2, 3, 4, 5, 6]


async def test_raise_policy_refuses_without_dropping(outbox_factory: OutboxFactory) -> None:
    limits = OutboxLimits(max_records=3, max_bytes=1 << 20, overflow=OverflowPolicy.RAISE)
    outbox = await outbox_factory(limits)
    await outbox.append([reading(i) for i in range(3)])
    assert outbox.stats().full
    with pytest.raises(OutboxFullError):
        await outbox.append([reading(3)])
    assert outbox.stats().records == 3
    assert outbox.stats().last_seq == 3  # the refused append used no sequence number


async def test_bytes_bound_counts_the_disk_and_blocks_too(
    outbox_factory: OutboxFactory,
) -> None:
    """The byte bound is the footprint on disk (pages in use + WAL), with headroom kept free."""
    bound = 512 * 1024
    outbox = await outbox_factory(OutboxLimits(max_records=1_000_000, max_bytes=bound))
    blocked: asyncio.Task[int] | None = None
    for chunk in range(200):
        task = asyncio.create_task(outbox.append([reading(chunk * 100 + i) for i in range(100)]))
        for _ in range(500):  # done, or waiting for room (back-pressure on), within 5 s
            await asyncio.sleep(0.01)
            if task.done() or outbox.stats().full:
                break
        if not task.done():
            blocked = task
            break
        await task
    assert blocked is not None, "never blocked"
    stats = outbox.stats()
    assert stats.full
    assert stats.records < 200 * 100
    assert stats.disk_bytes <= bound
    assert stats.disk_bytes > stats.bytes  # B-trees, de-dup keys and the WAL are counted
    await outbox.ack(stats.boot_id, stats.last_seq)
    assert await asyncio.wait_for(blocked, 5) == stats.last_seq + 100


async def test_oversized_tuple_fits_an_empty_outbox(outbox_factory: OutboxFactory) -> None:
    outbox = await outbox_factory(OutboxLimits(max_records=2, max_bytes=1 << 20))
    assert await outbox.append([reading(i) for i in range(5)]) == 5
    assert outbox.stats().records == 5


async def test_high_water_and_time_to_full(
    outbox_factory: OutboxFactory, manual_clock: ManualClock
) -> None:
    outbox = await outbox_factory(OutboxLimits(max_records=100, max_bytes=1 << 30, high_water=0.8))
    for minute in range(8):
        await outbox.append([reading(minute * 10 + i) for i in range(10)])
        manual_clock.advance(60)
    stats = outbox.stats()
    assert stats.fill_ratio == pytest.approx(0.8)
    assert stats.high_water
    assert not stats.full
    # 10 records a minute, 20 left: about two minutes (the estimate spans the recent window)
    assert stats.time_to_full is not None
    assert timedelta(minutes=1.5) < stats.time_to_full < timedelta(minutes=3)
    await outbox.ack(stats.boot_id, 70)
    assert not outbox.stats().high_water


async def test_dead_letter_replaces_in_place_and_keeps_original(
    outbox_factory: OutboxFactory,
) -> None:
    outbox = await outbox_factory(BIG)
    await outbox.append([reading(1), reading(2), reading(3)])
    boot = outbox.stats().boot_id
    await outbox.dead_letter(boot, 2, "records.0.record.value: out of range")
    rows = (await outbox.peek(10, 1 << 20)).records
    assert [r.seq for r in rows] == [1, 2, 3]
    letter = decode(rows[1].payload)
    assert isinstance(letter, DeadLetter)
    assert "out of range" in letter.reason
    assert Reading.model_validate_json(letter.raw) == reading(2)
    kept = await outbox.dead_letters()
    assert [(d.seq, d.reason) for d in kept] == [(2, "records.0.record.value: out of range")]
    assert Reading.model_validate_json(kept[0].payload) == reading(2)
    with pytest.raises(OutboxError, match="not in the outbox"):
        await outbox.dead_letter(boot, 99, "x")


async def test_wait_for_records_wakes_on_append(outbox_factory: OutboxFactory) -> None:
    outbox = await outbox_factory(BIG)
    waiter = asyncio.create_task(outbox.wait_for_records())
    await asyncio.sleep(0.01)
    assert not waiter.done()
    await outbox.append([reading(1)])
    await asyncio.wait_for(waiter, 5)


async def test_closed_outbox_refuses_use_and_releases_blocked_append(
    outbox_factory: OutboxFactory,
) -> None:
    outbox = await outbox_factory(OutboxLimits(max_records=1, max_bytes=1 << 20))
    await outbox.append([reading(1)])
    blocked = asyncio.create_task(outbox.append([reading(2)]))
    await asyncio.sleep(0.01)
    await outbox.close()
    with pytest.raises(OutboxClosedError):
        await blocked
    with pytest.raises(OutboxClosedError):
        await outbox.peek(1, 1)


def _remove_database(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)


async def test_sqlite_reopen_keeps_boot_and_numbering(
    tmp_path: Path, manual_clock: ManualClock
) -> None:
    path = tmp_path / "o.db"
    async with await SqliteOutbox.open(path, BIG, manual_clock) as first:
        await first.append([reading(i) for i in range(5)])
        await first.ack(first.boot_id, 2)
        boot = first.boot_id
    async with await SqliteOutbox.open(path, BIG, manual_clock) as again:
        assert again.boot_id == boot
        stats = again.stats()
        assert (stats.records, stats.last_seq) == (3, 5)
        assert stats.bytes == sum(len(reading(i).model_dump_json()) for i in (2, 3, 4))
        assert await again.append([reading(9)]) == 6
    _remove_database(path)
    async with await SqliteOutbox.open(path, BIG, manual_clock) as fresh:
        assert fresh.boot_id != boot  # a new file is a new boot: numbering restarts at 1
        assert await fresh.append([reading(1)]) == 1


async def test_sqlite_file_is_wal_with_full_sync(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "o.db"
    async with await SqliteOutbox.open(path):
        pass
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
