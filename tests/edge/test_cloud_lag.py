"""How far behind the cloud is (``edge.lag``), against a real outbox on a manual clock."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta

from edge.clock import ManualClock
from edge.lag import CloudLag
from edge.outbox import OutboxLimits
from protocols.records import Record
from tests.edge.conftest import OutboxFactory, reading

BIG = OutboxLimits(max_records=1_000_000, max_bytes=1 << 30)
M = 60.0


async def commit(
    lag: CloudLag, append: Callable[[Sequence[Record]], Awaitable[int]], records: list[Record]
) -> int:
    last = await append(records)
    lag.committed(last, records)
    return last


async def test_a_flaky_link_with_a_growing_backlog_keeps_the_cloud_behind(
    outbox_factory: OutboxFactory, manual_clock: ManualClock
) -> None:
    """Each minute one batch gets through, but the backlog grows: the age of the oldest record
    the cloud lacks keeps growing, whatever the run of failures."""
    outbox = await outbox_factory(BIG)
    lag = CloudLag(manual_clock, outbox.stats)
    for minute in range(30):
        for second in range(0, 60, 10):
            await commit(lag, outbox.append, [reading(minute * 60 + second)])
            manual_clock.advance(10)
        acked = outbox.stats().last_seq - outbox.stats().records
        await outbox.ack(outbox.stats().boot_id, acked + 2)  # a success: 2 of the 6 new records
    behind = lag.oldest_unacknowledged()
    assert behind > timedelta(minutes=15)
    assert lag.behind("fridge-1/t") >= behind


async def test_catch_up_with_fresh_data_behind_a_backlog_stays_behind_until_it_is_through(
    outbox_factory: OutboxFactory, manual_clock: ManualClock
) -> None:
    outbox = await outbox_factory(BIG)
    lag = CloudLag(manual_clock, outbox.stats)
    for minute in range(60):  # an hour of outage, ten readings a minute
        await commit(lag, outbox.append, [reading(minute * 10 + i) for i in range(10)])
        manual_clock.advance(M)
    assert lag.behind("fridge-1/t") >= timedelta(minutes=59)
    await outbox.ack(outbox.stats().boot_id, 300)  # half the backlog drained: 30 minutes behind
    # errs towards behind, by at most a few marks' spans (about 1/64 of the backlog each)
    assert timedelta(minutes=30) <= lag.behind("fridge-1/t") <= timedelta(minutes=33)
    await outbox.ack(outbox.stats().boot_id, 600)
    assert lag.oldest_unacknowledged() == timedelta(0)
    assert lag.behind("fridge-1/t") <= timedelta(minutes=1)


async def test_a_sensor_the_cloud_has_not_heard_from_is_behind_since_its_last_ack(
    outbox_factory: OutboxFactory, manual_clock: ManualClock
) -> None:
    outbox = await outbox_factory(BIG)
    lag = CloudLag(manual_clock, outbox.stats)
    await commit(lag, outbox.append, [reading(0, "a/t")])
    await outbox.ack(outbox.stats().boot_id, 1)
    manual_clock.advance(10 * M)
    await commit(lag, outbox.append, [reading(1, "b/t")])
    await outbox.ack(outbox.stats().boot_id, 2)
    assert lag.oldest_unacknowledged() == timedelta(0)
    assert lag.behind("a/t") == timedelta(minutes=10)
    assert lag.behind("b/t") == timedelta(0)
    assert lag.behind("never/t") == timedelta(minutes=10)  # counted from the start


async def test_bounded_memory_errs_towards_behind(
    outbox_factory: OutboxFactory, manual_clock: ManualClock
) -> None:
    """Hundreds of unacknowledged commits keep 64 marks; every estimate is >= the truth."""
    outbox = await outbox_factory(BIG)
    lag = CloudLag(manual_clock, outbox.stats)
    n = 2000
    for second in range(n // 10):  # a commit of ten readings a second
        await commit(lag, outbox.append, [reading(second * 10 + i) for i in range(10)])
        manual_clock.advance(1)
    for through in (567, 1000, 1999):
        await outbox.ack(outbox.stats().boot_id, through)
        truth = n // 10 - through // 10  # record through+1 was committed at second through//10
        assert lag.oldest_unacknowledged() >= timedelta(seconds=truth)
        assert lag.oldest_unacknowledged() <= timedelta(seconds=truth + 3 * n / 10 / 64)
        assert lag.sensor_stale("fridge-1/t") >= timedelta(seconds=n // 10 - (through - 1) // 10)


async def test_a_rebased_outbox_keeps_its_age(
    outbox_factory: OutboxFactory, manual_clock: ManualClock
) -> None:
    outbox = await outbox_factory(BIG)
    lag = CloudLag(manual_clock, outbox.stats)
    for i in range(10):
        await commit(lag, outbox.append, [reading(i)])
    manual_clock.advance(30 * M)
    await outbox.rebase()
    assert outbox.stats().last_seq == 10
    assert lag.oldest_unacknowledged() == timedelta(minutes=30)
    await outbox.ack(outbox.stats().boot_id, 10)
    assert lag.oldest_unacknowledged() == timedelta(0)


async def test_a_wall_clock_step_changes_neither_age(
    outbox_factory: OutboxFactory, manual_clock: ManualClock
) -> None:
    """Issue 22.2: both ages run on the monotonic clock, so an NTP step of an hour back or two
    forward neither disarms the local alarms nor arms them early."""
    outbox = await outbox_factory(BIG)
    lag = CloudLag(manual_clock, outbox.stats)
    await commit(lag, outbox.append, [reading(0, "a/t")])
    await outbox.ack(outbox.stats().boot_id, 1)
    manual_clock.advance(M)
    await commit(lag, outbox.append, [reading(1, "a/t")])
    manual_clock.advance(4 * M)
    for step in (timedelta(hours=-1), timedelta(hours=2)):
        manual_clock.step_wall(step)
        assert lag.oldest_unacknowledged() == timedelta(minutes=4)
        assert lag.behind("a/t") == timedelta(minutes=5)
        assert lag.behind("never/t") == timedelta(minutes=5)
