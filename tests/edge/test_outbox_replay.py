"""The outbox's replay window: acknowledged records are kept (never sent again unless asked),
expire after the window, give way to new records, and can be made pending again."""

from __future__ import annotations

import random
import sqlite3
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from edge.clock import ManualClock
from edge.outbox import OutboxLimits, SqliteOutbox, decode_all
from tests.edge.conftest import BIG, OutboxFactory, reading


async def test_acknowledged_records_are_kept_but_not_sent_again(
    outbox_factory: OutboxFactory,
) -> None:
    outbox = await outbox_factory(BIG)
    await outbox.append([reading(i) for i in range(1, 11)])
    boot = outbox.stats().boot_id
    assert await outbox.ack(boot, 6) == 6
    stats = outbox.stats()
    assert (stats.records, stats.retained, stats.retained_from_seq) == (4, 6, 1)
    assert stats.replay_since is not None
    assert stats.replay_window == timedelta(days=7)
    assert [r.seq for r in (await outbox.peek(100, 1 << 20)).records] == [7, 8, 9, 10]
    assert await outbox.ack(boot, 6) == 0  # a repeated ack changes nothing
    assert await outbox.append([reading(11)]) == 11


async def test_replay_makes_kept_records_pending_again_in_order(
    outbox_factory: OutboxFactory,
) -> None:
    outbox = await outbox_factory(BIG)
    await outbox.append([reading(i) for i in range(1, 11)])
    boot = outbox.stats().boot_id
    await outbox.ack(boot, 8)
    reopened = await outbox.replay(boot, 4)
    assert (reopened.first_seq, reopened.count, reopened.acked_through) == (4, 5, 3)
    peeked = await outbox.peek(100, 1 << 20)
    assert [r.seq for r in peeked.records] == list(range(4, 11))
    assert decode_all(peeked.records) == [reading(i) for i in range(4, 11)]
    assert (outbox.stats().records, outbox.stats().retained) == (7, 3)
    # asking for something not yet acknowledged changes nothing
    assert (await outbox.replay(boot, 9)).count == 0
    assert await outbox.ack(boot, 10) == 7
    assert outbox.stats().records == 0


async def test_records_older_than_the_window_are_deleted(
    outbox_factory: OutboxFactory, manual_clock: ManualClock
) -> None:
    outbox = await outbox_factory(replace(BIG, replay_window=timedelta(hours=1)))
    await outbox.append([reading(i) for i in range(1, 6)])
    boot = outbox.stats().boot_id
    await outbox.ack(boot, 3)
    manual_clock.advance(50 * 60)
    await outbox.ack(boot, 5)
    assert outbox.stats().retained == 5
    manual_clock.advance(20 * 60)  # the first ack is 70 minutes old
    await outbox.append([reading(6)])
    await outbox.ack(boot, 6)
    assert (outbox.stats().retained, outbox.stats().retained_from_seq) == (3, 4)
    reopened = await outbox.replay(boot, 1)  # 1-3 are gone: sending restarts at 4
    assert (reopened.first_seq, reopened.count) == (4, 3)


async def test_kept_records_give_way_to_new_ones(outbox_factory: OutboxFactory) -> None:
    outbox = await outbox_factory(OutboxLimits(max_records=1000, max_bytes=1 << 30))
    await outbox.append([reading(i) for i in range(1, 901)])
    boot = outbox.stats().boot_id
    await outbox.ack(boot, 900)
    assert outbox.stats().retained == 900
    assert not outbox.stats().full
    assert outbox.stats().fill_ratio == 0.0  # kept records are not back-pressure
    # 300 new records need 200 rows of the kept ones: the oldest go, nothing blocks
    assert await outbox.append([reading(i) for i in range(901, 1201)]) == 1200
    stats = outbox.stats()
    assert stats.records == 300
    assert stats.retained + stats.records <= 1000
    assert stats.retained_from_seq is not None
    assert stats.retained_from_seq > 200
    assert [r.seq for r in (await outbox.peek(1000, 1 << 30)).records] == list(range(901, 1201))


async def test_a_zero_window_deletes_on_acknowledgement(outbox_factory: OutboxFactory) -> None:
    outbox = await outbox_factory(replace(BIG, replay_window=timedelta(0)))
    await outbox.append([reading(i) for i in range(1, 6)])
    boot = outbox.stats().boot_id
    assert await outbox.ack(boot, 5) == 5
    assert (outbox.stats().records, outbox.stats().retained) == (0, 0)
    assert (await outbox.replay(boot, 1)).first_seq == 6


async def test_rebase_forgets_kept_records(outbox_factory: OutboxFactory) -> None:
    outbox = await outbox_factory(BIG)
    await outbox.append([reading(i) for i in range(1, 8)])
    await outbox.ack(outbox.stats().boot_id, 4)
    new = await outbox.rebase()
    assert (outbox.stats().records, outbox.stats().retained) == (3, 0)
    assert [r.seq for r in (await outbox.peek(10, 1 << 20)).records] == [1, 2, 3]
    assert (await outbox.replay(new, 1)).count == 0


async def test_the_window_survives_a_restart_and_old_files_open_with_all_pending(
    tmp_path: Path, manual_clock: ManualClock
) -> None:
    path = tmp_path / "outbox.db"
    async with await SqliteOutbox.open(path, BIG, manual_clock) as outbox:
        await outbox.append([reading(i) for i in range(1, 8)])
        boot = outbox.stats().boot_id
        await outbox.ack(boot, 5)
    async with await SqliteOutbox.open(path, BIG, manual_clock) as outbox:
        assert (outbox.stats().records, outbox.stats().retained) == (2, 5)
        assert (await outbox.replay(boot, 2)).count == 4
    # a file written before the replay window had no mark: every row in it is pending
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM meta WHERE key = 'acked_through'")
        db.execute("DELETE FROM records WHERE seq < 3")
    async with await SqliteOutbox.open(path, BIG, manual_clock) as outbox:
        assert (outbox.stats().records, outbox.stats().retained) == (5, 0)
        assert [r.seq for r in (await outbox.peek(10, 1 << 20)).records] == [3, 4, 5, 6, 7]


async def test_kept_counts_carried_along_match_a_recount(
    tmp_path: Path, manual_clock: ManualClock
) -> None:
    # The window's counts are carried from ack to ack, expiry and eviction instead of recounted
    # (a recount per ack made a large drain quadratic); reopening the file recounts them.
    path = tmp_path / "outbox.db"
    limits = OutboxLimits(max_records=400, max_bytes=1 << 30, replay_window=timedelta(minutes=30))
    rng = random.Random(7)
    outbox = await SqliteOutbox.open(path, limits, manual_clock)
    boot = outbox.stats().boot_id
    try:
        for step in range(200):
            last = outbox.stats().last_seq
            action = rng.random()
            # pending stays well under max_records, so an append never waits for room
            if action < 0.45:
                await outbox.append([reading(last + i + 1) for i in range(rng.randint(1, 40))])
            elif action < 0.85:
                await outbox.ack(boot, rng.randint(max(0, last - 30), last))
            elif action < 0.92:
                await outbox.replay(boot, rng.randint(max(1, last - 60), last + 1))
            else:
                await outbox.append([reading(last + 1)])
            manual_clock.advance(rng.choice([1, 20, 90, 400]))
            carried = outbox.stats()
            if step % 20 == 19:
                await outbox.close()
                outbox = await SqliteOutbox.open(path, limits, manual_clock)
                recounted = outbox.stats()
                assert (
                    carried.records,
                    carried.retained,
                    carried.retained_bytes,
                    carried.retained_from_seq,
                    carried.replay_since,
                ) == (
                    recounted.records,
                    recounted.retained,
                    recounted.retained_bytes,
                    recounted.retained_from_seq,
                    recounted.replay_since,
                ), f"step {step}"
    finally:
        await outbox.close()
