"""The uplink against a test cloud (``httpx.MockTransport``) that fails in every way it can."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from datetime import timedelta

import httpx
import pytest

from edge.clock import ManualClock
from edge.outbox import Outbox
from edge.uplink import Uplink
from protocols.batch import Batch
from protocols.records import DeadLetter, Reading, Record
from tests.edge.conftest import TOKEN, FakeCloud, OutboxFactory, reading
from tests.edge.conftest import make_uplink as make


async def drain(uplink: Uplink, outbox: Outbox, clock: ManualClock, limit: int = 200) -> list[str]:
    """Sends until the outbox is empty, sleeping on the fake clock as ``run`` would."""
    kinds: list[str] = []
    for _ in range(limit):
        if not outbox.stats().records:
            return kinds
        outcome = await uplink.send_once()
        kinds.append(outcome.kind)
        await clock.sleep(outcome.delay)
    raise AssertionError(f"not drained after {limit} attempts: {kinds[-10:]}")


def answer(status: int, **headers: str) -> Callable[[httpx.Request], httpx.Response]:
    return lambda _request: httpx.Response(status, headers=headers, json={"error": "test"})


async def test_batches_go_in_order_as_gzip_json_with_the_token(
    outbox_factory: OutboxFactory, fake_cloud: FakeCloud, manual_clock: ManualClock
) -> None:
    outbox, uplink, _ = await make(outbox_factory, fake_cloud, manual_clock)
    assert await drain(uplink, outbox, manual_clock) == ["ok", "ok", "ok"]
    assert fake_cloud.seqs() == list(range(1, 13))
    assert [item.record for item in fake_cloud.stored] == [reading(i) for i in range(1, 13)]
    request = fake_cloud.requests[0]
    assert str(request.url) == "https://cloud.example/v1/batches"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["content-type"] == "application/json"
    batch = Batch.model_validate_json(gzip.decompress(request.content))
    assert (batch.gateway_id, batch.first_seq, batch.last_seq) == ("gw-1", 1, 5)
    assert uplink.status.records_acked == 12
    assert uplink.status.last_success == manual_clock.now()
    assert outbox.stats().records == 0


async def test_5xx_429_timeouts_and_connection_errors_back_off_then_deliver(
    outbox_factory: OutboxFactory, fake_cloud: FakeCloud, manual_clock: ManualClock
) -> None:
    outbox, uplink, _ = await make(outbox_factory, fake_cloud, manual_clock, n=3)

    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("no answer", request=request)

    def reset(request: httpx.Request) -> httpx.Response:
        raise httpx.RemoteProtocolError("peer closed", request=request)

    fake_cloud.script = [answer(500), answer(502), answer(429), timeout, reset, answer(503)]
    outcomes = [await uplink.send_once() for _ in range(6)]
    assert [o.kind for o in outcomes] == [
        "http_500", "http_502", "http_429", "timeout", "unreachable", "http_503"
    ]  # fmt: skip
    delays = [o.delay for o in outcomes]
    # exponential (1, 2, 4, 8, 16, 32 s) with equal jitter: each within [d/2, d]
    for n, delay in enumerate(delays):
        assert 2**n / 2 <= delay <= 2**n
    assert outbox.stats().records == 3  # nothing deleted while failing
    assert uplink.status.consecutive_failures == 6
    assert (await uplink.send_once()).kind == "ok"
    assert fake_cloud.seqs() == [1, 2, 3]
    assert uplink.status.consecutive_failures == 0
    assert uplink.unreachable_for() == timedelta(0)


async def test_backoff_is_capped(
    outbox_factory: OutboxFactory, fake_cloud: FakeCloud, manual_clock: ManualClock
) -> None:
    _, uplink, _ = await make(outbox_factory, fake_cloud, manual_clock, n=1)
    fake_cloud.script = [answer(503)] * 12
    delays = [(await uplink.send_once()).delay for _ in range(12)]
    assert max(delays) <= 60
    assert delays[-1] >= 30


@pytest.mark.parametrize(
    ("header", "expected"),
    [("120", 120.0), ("Sun, 01 Mar 2026 12:05:00 GMT", 300.0), ("7200", 3600.0)],
)
async def test_retry_after_is_honoured(
    outbox_factory: OutboxFactory,
    fake_cloud: FakeCloud,
    manual_clock: ManualClock,
    header: str,
    expected: float,
) -> None:
    _, uplink, _ = await make(outbox_factory, fake_cloud, manual_clock, n=1)
    fake_cloud.script = [answer(503, **{"Retry-After": header})]
    outcome = await uplink.send_once()
    assert outcome.delay == pytest.approx(expected)  # capped at retry_after_max (1 h)


async def test_partial_ack_deletes_only_what_was_stored(
    outbox_factory: OutboxFactory, fake_cloud: FakeCloud, manual_clock: ManualClock
) -> None:
    outbox, uplink, _ = await make(outbox_factory, fake_cloud, manual_clock)
    fake_cloud.ack_limit = 3
    first = await uplink.send_once()
    assert first.kind == "partial"
    assert [r.seq for r in (await outbox.peek(100, 1 << 20)).records] == list(range(4, 13))
    await drain(uplink, outbox, manual_clock)
    assert fake_cloud.seqs() == list(range(1, 13))  # each record stored exactly once


async def test_lost_acknowledgement_is_resent_and_stored_once(
    outbox_factory: OutboxFactory, fake_cloud: FakeCloud, manual_clock: ManualClock
) -> None:
    outbox, uplink, _ = await make(outbox_factory, fake_cloud, manual_clock, n=5)

    def stored_then_lost(request: httpx.Request) -> httpx.Response:
        fake_cloud.handle(request)  # the cloud commits ...
        raise httpx.ReadTimeout("... but the answer never arrives", request=request)

    fake_cloud.script = [stored_then_lost]
    assert (await uplink.send_once()).kind == "timeout"
    assert outbox.stats().records == 5
    await drain(uplink, outbox, manual_clock)
    assert fake_cloud.seqs() == [1, 2, 3, 4, 5]


async def test_refused_record_becomes_a_dead_letter_and_the_rest_flows(
    outbox_factory: OutboxFactory, fake_cloud: FakeCloud, manual_clock: ManualClock
) -> None:
    outbox, uplink, alarms = await make(outbox_factory, fake_cloud, manual_clock)
    bad = reading(7)
    fake_cloud.refuse = lambda record: record == bad
    kinds = await drain(uplink, outbox, manual_clock)
    assert kinds.count("dead_lettered") == 1
    assert fake_cloud.seqs() == list(range(1, 13))  # contiguous: the cloud sees the gap's reason
    letter = fake_cloud.stored[6].record
    assert isinstance(letter, DeadLetter)
    assert "refused by test" in letter.reason
    assert Reading.model_validate_json(letter.raw) == bad
    good = [item.record for item in fake_cloud.stored if isinstance(item.record, Reading)]
    assert good == [reading(i) for i in range(1, 13) if i != 7]
    kept = await outbox.dead_letters()
    assert [d.seq for d in kept] == [7]
    assert "uplink.dead_letter" in alarms.active
    assert uplink.status.dead_lettered == 1


async def test_unnamed_refusal_is_bisected_to_the_bad_record(
    outbox_factory: OutboxFactory, fake_cloud: FakeCloud, manual_clock: ManualClock
) -> None:
    outbox, uplink, _ = await make(
        outbox_factory, fake_cloud, manual_clock, n=40, max_batch_records=16
    )
    bad = {reading(11), reading(30)}
    fake_cloud.refuse = lambda record: record in bad
    fake_cloud.pinpoint = False
    kinds = await drain(uplink, outbox, manual_clock)
    assert kinds.count("dead_lettered") == 2
    assert len(kinds) < 30  # log2 steps per bad record, not one request per record
    assert fake_cloud.seqs() == list(range(1, 41))
    letters = [item.seq for item in fake_cloud.stored if isinstance(item.record, DeadLetter)]
    assert letters == [11, 30]


async def test_auth_refusal_keeps_everything_and_alarms_until_fixed(
    outbox_factory: OutboxFactory, fake_cloud: FakeCloud, manual_clock: ManualClock
) -> None:
    outbox, uplink, alarms = await make(outbox_factory, fake_cloud, manual_clock, n=3)
    fake_cloud.script = [answer(401), answer(403)]
    first, second = await uplink.send_once(), await uplink.send_once()
    assert (first.kind, second.kind) == ("http_401", "http_403")
    assert first.delay == 60  # the longest backoff: retrying fast will not help
    assert outbox.stats().records == 3
    assert "uplink.refused" in alarms.active
    assert (await uplink.send_once()).kind == "ok"
    assert "uplink.refused" not in alarms.active


async def test_a_409_that_asks_for_nothing_earlier_is_never_papered_over(
    outbox_factory: OutboxFactory, fake_cloud: FakeCloud, manual_clock: ManualClock
) -> None:
    # A restored cloud's 409 (an earlier expected_seq) is refilled: tests/edge/test_uplink_replay
    outbox, uplink, alarms = await make(outbox_factory, fake_cloud, manual_clock, n=6)
    fake_cloud.script = [answer(409)]
    outcome = await uplink.send_once()
    assert outcome.kind == "http_409"
    assert outbox.stats().records == 6
    assert "uplink.refused" in alarms.active


async def test_too_large_halves_the_batch(
    outbox_factory: OutboxFactory, fake_cloud: FakeCloud, manual_clock: ManualClock
) -> None:
    outbox, uplink, _ = await make(outbox_factory, fake_cloud, manual_clock, n=8)
    fake_cloud.script = [answer(413)]
    kinds = await drain(uplink, outbox, manual_clock)
    assert kinds[0] == "too_large"
    sizes = [
        len(Batch.model_validate_json(gzip.decompress(r.content)).records)
        for r in fake_cloud.requests
    ]
    assert sizes[:2] == [5, 2]
    assert fake_cloud.seqs() == list(range(1, 9))


async def test_cloud_away_for_minutes_while_records_keep_coming(
    outbox_factory: OutboxFactory, fake_cloud: FakeCloud, manual_clock: ManualClock
) -> None:
    outbox, uplink, _ = await make(
        outbox_factory, fake_cloud, manual_clock, n=0, backoff_max=timedelta(seconds=30)
    )
    fake_cloud.down_until = manual_clock.monotonic() + 15 * 60
    produced: list[Record] = []
    worst = timedelta(0)
    for i in range(1, 400):
        record = reading(i)
        produced.append(record)
        await outbox.append([record])
        outcome = await uplink.send_once()
        worst = max(worst, uplink.unreachable_for())
        await manual_clock.sleep(max(outcome.delay, 5.0))
    assert worst >= timedelta(minutes=14)
    await drain(uplink, outbox, manual_clock)
    assert [item.record for item in fake_cloud.stored] == produced
    assert fake_cloud.seqs() == list(range(1, 400))


async def test_run_lingers_for_a_fuller_batch(
    outbox_factory: OutboxFactory, fake_cloud: FakeCloud, manual_clock: ManualClock
) -> None:
    import asyncio

    outbox, uplink, _ = await make(
        outbox_factory, fake_cloud, manual_clock, n=2, linger=timedelta(seconds=2)
    )
    task = asyncio.create_task(uplink.run())
    try:
        for _ in range(100):
            await asyncio.sleep(0.01)
            if not outbox.stats().records:
                break
        assert outbox.stats().records == 0
        assert manual_clock.monotonic() >= 2.0  # it waited (on the clock) for the linger
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert len(fake_cloud.requests) == 1
    assert fake_cloud.seqs() == [1, 2]
