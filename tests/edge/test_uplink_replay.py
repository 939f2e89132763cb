"""A cloud restored to an earlier point answers 409 with an earlier ``expected_seq``: the uplink
refills it from the replay window instead of stopping, and reports a gap it cannot refill."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from datetime import timedelta

from edge.alarms import LocalAlarmConfig, LocalAlarms
from edge.clock import ManualClock
from edge.outbox import OutboxLimits
from edge.uplink import Outcome, Uplink
from edge.uplink_replay import GAP_ALARM, REPLAYED_ALARM
from tests.edge.conftest import FakeCloud, OutboxFactory, make_uplink, reading, uplink_config


def restore(cloud: FakeCloud, through: int) -> None:
    """The fake cloud forgets everything after ``through``, as a restore from a backup does."""
    cloud.stored = [item for item in cloud.stored if item.seq <= through]
    for key in cloud.stored_through:
        cloud.stored_through[key] = min(cloud.stored_through[key], through)


async def send_all(uplink_send: Callable[[], Awaitable[Outcome]], rounds: int = 20) -> list[str]:
    """Sends until the outbox is empty; the kinds of the attempts."""
    kinds = []
    for _ in range(rounds):
        outcome = await uplink_send()
        kinds.append(outcome.kind)
        if outcome.kind == "empty":
            break
    return kinds


async def test_a_restored_cloud_is_refilled_without_loss_or_duplicates(
    outbox_factory: OutboxFactory, fake_cloud: FakeCloud, manual_clock: ManualClock
) -> None:
    outbox, uplink, alarms = await make_uplink(outbox_factory, fake_cloud, manual_clock, n=12)
    await send_all(uplink.send_once)
    assert fake_cloud.seqs() == list(range(1, 13))
    assert outbox.stats().retained == 12
    restore(fake_cloud, 4)  # the backup was taken after seq 4 was stored
    await outbox.append([reading(i) for i in range(13, 16)])
    kinds = await send_all(uplink.send_once)
    assert kinds[0] == "replayed"
    assert REPLAYED_ALARM not in alarms.active  # cleared once the cloud had them again
    assert kinds[-1] == "empty"
    assert fake_cloud.seqs() == list(range(1, 16))  # every record once, in order
    assert [item.record for item in fake_cloud.stored] == [reading(i) for i in range(1, 16)]
    assert len(fake_cloud.stored_through) == 1  # the same boot all along
    assert uplink.status.consecutive_failures == 0


async def test_a_cloud_restored_to_before_the_boot_gets_all_of_it_again(
    outbox_factory: OutboxFactory, fake_cloud: FakeCloud, manual_clock: ManualClock
) -> None:
    outbox, uplink, _ = await make_uplink(outbox_factory, fake_cloud, manual_clock, n=7)
    await send_all(uplink.send_once)
    fake_cloud.stored.clear()
    fake_cloud.stored_through.clear()
    await outbox.append([reading(8)])
    await send_all(uplink.send_once)
    assert fake_cloud.seqs() == list(range(1, 9))


async def test_records_beyond_the_window_are_reported_lost_and_sending_goes_on(
    outbox_factory: OutboxFactory, fake_cloud: FakeCloud, manual_clock: ManualClock
) -> None:
    small = await outbox_factory(
        OutboxLimits(max_records=1_000_000, max_bytes=1 << 30, replay_window=timedelta(hours=1))
    )
    alarms = LocalAlarms("gw-1", LocalAlarmConfig(), manual_clock, lambda _sensor: timedelta(0))
    uplink = Uplink(
        "gw-1", small, fake_cloud.client(), uplink_config(), manual_clock, alarms=alarms,
        rng=random.Random(7),
    )  # fmt: skip
    await small.append([reading(i) for i in range(1, 6)])
    await send_all(uplink.send_once)
    old_boot = small.stats().boot_id
    manual_clock.advance(2 * 3600)  # 1-5 leave the window
    await small.append([reading(i) for i in range(6, 11)])
    await send_all(uplink.send_once)
    assert small.stats().retained_from_seq == 6
    restore(fake_cloud, 2)  # the cloud lost 3-10; the gateway keeps only 6-10
    await small.append([reading(11)])
    kinds = await send_all(uplink.send_once)
    assert kinds[0] == "replay_gap"
    assert GAP_ALARM in alarms.active  # stays raised: 3-5 are gone
    assert "3-5" in alarms.active[GAP_ALARM]
    assert kinds[-1] == "empty"
    new_boot = small.stats().boot_id
    assert new_boot != old_boot
    stored = [(item.seq, item.record) for item in fake_cloud.stored]
    assert stored[:2] == [(1, reading(1)), (2, reading(2))]
    # 6-11 arrive again under the new boot, numbered from 1, once each
    assert [record for _, record in stored[2:]] == [reading(i) for i in range(6, 12)]
    assert fake_cloud.stored_through[("gw-1", new_boot)] == 6
