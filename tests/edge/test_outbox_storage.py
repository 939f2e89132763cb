"""The SQLite outbox's storage: de-duplication keys in generations (indexed prune, outside the
appends), the earlier key layout migrated, damaged files moved aside, renumbering on rollback."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import timedelta
from pathlib import Path

from edge.clock import ManualClock
from edge.outbox import OutboxLimits, SqliteOutbox, decode_all, open_outbox
from tests.edge.conftest import reading

DAY = 24 * 3600.0
LIMITS = OutboxLimits(max_records=1_000_000, max_bytes=1 << 30, dedupe_window=timedelta(days=1))


def plan(path: Path, sql: str, *args: object) -> str:
    with sqlite3.connect(path) as conn:
        rows = conn.execute(f"EXPLAIN QUERY PLAN {sql}", args).fetchall()
    return " | ".join(str(r[-1]) for r in rows)


async def test_redeliveries_are_dropped_for_a_window_then_forgotten_and_pruned(
    tmp_path: Path, manual_clock: ManualClock
) -> None:
    path = tmp_path / "o.db"
    async with await SqliteOutbox.open(path, LIMITS, manual_clock) as outbox:
        await outbox.append([reading(i) for i in range(100)])
        manual_clock.advance(0.9 * DAY)
        assert await outbox.append([reading(i) for i in range(100)]) == 100  # all dropped
        assert outbox.stats().duplicates_dropped == 100
        manual_clock.advance(0.7 * DAY)  # 1.6 windows: forgotten, and pruned by the append
        assert await outbox.append([reading(0)]) == 101
        manual_clock.advance(0.6 * DAY)
        await outbox.append([reading(1)])
        keys = await asyncio.to_thread(_count_keys, path)
    assert keys == 2  # the first generation's 100 keys were deleted


def _count_keys(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT count(*) FROM seen_keys").fetchone()[0])


async def test_wall_clock_steps_neither_forget_keys_nor_pin_them_and_restarts_go_on(
    tmp_path: Path, manual_clock: ManualClock
) -> None:
    # Generations are counted on the monotonic clock and kept in the file: an NTP step back
    # used to put the redelivery in an older generation than its key (committed twice), and a
    # clock far ahead left keys that no prune reached until that date.
    path = tmp_path / "o.db"
    async with await SqliteOutbox.open(path, LIMITS, manual_clock) as outbox:
        await outbox.append([reading(1)])
        manual_clock.step_wall(timedelta(hours=-30))
        assert await outbox.append([reading(1)]) == 1  # redelivered after a step back: dropped
        manual_clock.step_wall(timedelta(days=30))
        await outbox.append([reading(2)])
        manual_clock.step_wall(timedelta(days=-30, hours=30))
        manual_clock.advance(0.9 * DAY)
        assert await outbox.append([reading(2)]) == 2  # still remembered
    async with await SqliteOutbox.open(path, LIMITS, manual_clock) as outbox:
        # a restart goes on from the stored generation: the keys are still remembered
        assert await outbox.append([reading(1), reading(2)]) == 2
        assert outbox.stats().duplicates_dropped == 2
        manual_clock.advance(1.6 * DAY)
        assert await outbox.append([reading(3)]) == 3
        manual_clock.advance(0.6 * DAY)
        await outbox.append([reading(4)])
        keys = await asyncio.to_thread(_count_keys, path)
    assert keys == 2  # the keys written before the clock steps were all pruned


async def test_lookups_and_prune_search_the_primary_key_never_scan(
    tmp_path: Path, manual_clock: ManualClock
) -> None:
    path = tmp_path / "o.db"
    async with await SqliteOutbox.open(path, LIMITS, manual_clock) as outbox:
        await outbox.append([reading(1)])
    lookup = plan(path, "SELECT 1 FROM seen_keys WHERE gen IN (?, ?, ?) AND key = ?", 3, 2, 1, b"k")
    prune = plan(
        path,
        "DELETE FROM seen_keys WHERE (gen, key) IN "
        "(SELECT gen, key FROM seen_keys WHERE gen < ? LIMIT ?)",
        5,
        20_000,
    )
    assert "SEARCH seen_keys USING PRIMARY KEY" in lookup
    assert "SCAN" not in lookup
    assert "SEARCH seen_keys USING PRIMARY KEY (gen<?)" in prune


async def test_the_earlier_key_table_is_dropped(tmp_path: Path, manual_clock: ManualClock) -> None:
    path = tmp_path / "o.db"
    with sqlite3.connect(path) as conn:  # the layout before generations (hash-only keys)
        conn.execute("CREATE TABLE seen_readings (key BLOB PRIMARY KEY, seen_at REAL NOT NULL)")
        conn.execute("INSERT INTO seen_readings VALUES (?, ?)", (b"k" * 32, 0.0))
    async with await SqliteOutbox.open(path, LIMITS, manual_clock) as outbox:
        assert await outbox.append([reading(7), reading(7)]) == 1
    with sqlite3.connect(path) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "seen_readings" not in tables


async def test_keys_of_a_commit_sort_together(tmp_path: Path, manual_clock: ManualClock) -> None:
    """Device time leads the key: one commit's readings land on neighbouring B-tree pages."""
    from edge.outbox import reading_key

    keys = [reading_key(reading(i, f"fridge-{i % 50}/t")) for i in range(100)]
    assert keys == sorted(keys, key=lambda k: k[:8] if k else b"")
    assert all(k is not None and len(k) == 24 for k in keys)


async def test_a_file_marked_damaged_at_runtime_is_moved_aside_at_the_next_start(
    tmp_path: Path, manual_clock: ManualClock
) -> None:
    path = tmp_path / "o.db"
    async with await SqliteOutbox.open(path, LIMITS, manual_clock) as outbox:
        await outbox.append([reading(1)])
        old_boot = outbox.boot_id
        outbox.damage_marker.write_text("malformed\n")  # as a runtime SQLITE_CORRUPT leaves it
    opened = await open_outbox(path, LIMITS, manual_clock)
    async with opened.outbox as fresh:
        assert opened.moved_aside is not None
        assert fresh.boot_id != old_boot
        assert fresh.stats().records == 0
    assert opened.moved_aside.exists()
    assert not fresh.damage_marker.exists()
    async with await SqliteOutbox.open(opened.moved_aside, LIMITS, manual_clock) as aside:
        assert aside.stats().records == 1  # nothing deleted: an operator can still salvage it


async def test_rebase_renumbers_from_one_under_a_new_boot(
    tmp_path: Path, manual_clock: ManualClock
) -> None:
    path = tmp_path / "o.db"
    async with await SqliteOutbox.open(path, LIMITS, manual_clock) as outbox:
        await outbox.append([reading(i) for i in range(10)])
        await outbox.ack(outbox.boot_id, 4)
        old = outbox.boot_id
        new = await outbox.rebase()
        assert new != old
        rows = (await outbox.peek(100, 1 << 20)).records
        assert [r.seq for r in rows] == [1, 2, 3, 4, 5, 6]
        assert decode_all(rows) == [reading(i) for i in range(4, 10)]
        assert await outbox.append([reading(99)]) == 7
    async with await SqliteOutbox.open(path, LIMITS, manual_clock) as again:
        assert (again.boot_id, again.stats().last_seq) == (new, 7)


async def test_after_an_unclean_stop_a_damaged_page_is_found_and_moved_aside(
    tmp_path: Path, manual_clock: ManualClock
) -> None:
    path = tmp_path / "o.db"
    async with await SqliteOutbox.open(path, LIMITS, manual_clock) as outbox:
        await outbox.append([reading(i) for i in range(2000)])
    data = bytearray(await asyncio.to_thread(path.read_bytes))
    data[4096 * 3 : 4096 * 4] = b"\xa5" * 4096  # a B-tree page rots on the flash
    await asyncio.to_thread(path.write_bytes, bytes(data))
    wal = path.with_name(path.name + "-wal")
    await asyncio.to_thread(wal.write_bytes, b"\0" * 64)  # left behind by a killed run
    opened = await open_outbox(path, LIMITS, manual_clock)
    async with opened.outbox as fresh:
        assert opened.moved_aside is not None
        assert opened.damage is not None
        assert "quick check" in opened.damage or "malformed" in opened.damage
        assert await fresh.append([reading(1)]) == 1


def _on_disk(path: Path) -> int:
    """What the filesystem holds for the outbox: the database file and its WAL."""
    wal = path.with_name(path.name + "-wal")
    return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


async def test_the_files_on_disk_stay_within_max_bytes_through_fill_and_ack_cycles(
    tmp_path: Path, manual_clock: ManualClock
) -> None:
    """Issue 22.4: the bound is what the filesystem holds (file, WAL, de-dup keys, B-trees),
    checked with stat, not only the outbox's own count; before, a 168 MB bound made a 251 MB
    file. Cycles of filling to the bound and acknowledging half reuse the freed pages."""
    bound = 1 << 20
    path = tmp_path / "o.db"
    limits = OutboxLimits(max_records=1_000_000, max_bytes=bound, dedupe_window=timedelta(days=1))
    worst, n = 0, 0
    async with await SqliteOutbox.open(path, limits, manual_clock) as outbox:
        for cycle in range(4):
            while True:
                batch = [reading(n * 50 + i, value=float(cycle)) for i in range(50)]
                task = asyncio.create_task(outbox.append(batch))
                for _ in range(200):
                    await asyncio.sleep(0.005)
                    if task.done() or outbox.stats().full:
                        break
                manual_clock.advance(1)
                worst = max(worst, await asyncio.to_thread(_on_disk, path))
                if not task.done():
                    break  # full: back-pressure
                n += 1
            stats = outbox.stats()
            assert stats.full
            assert stats.disk_bytes <= bound
            await outbox.ack(stats.boot_id, stats.last_seq - stats.records // 2)
            await asyncio.wait_for(task, 5)
            n += 1
            worst = max(worst, await asyncio.to_thread(_on_disk, path))
    assert worst <= bound, (worst, bound)
    assert worst > bound // 2  # the outbox did fill up to near its bound
