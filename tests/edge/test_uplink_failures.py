"""The uplink against answers nobody planned for: each is a failed send with backoff, never the
end of the agent; bodies are read with limits; the cloud must be https; a rolled-back outbox is
renumbered, not silently acknowledged; ``linger`` runs on the monotonic clock."""

from __future__ import annotations

import asyncio
import gzip
from datetime import timedelta

import httpx
import pytest
from pydantic import ValidationError

from edge.clock import ManualClock
from edge.config import EdgeConfig
from edge.remote_config import ConfigClient, ConfigUnavailableError
from protocols.gateway_config import BrowseAnswer, ConfigReport
from tests.edge.conftest import FakeCloud, OutboxFactory, reading
from tests.edge.conftest import make_uplink as make
from tests.edge.conftest import uplink_config as config


def streamed(status: int, body: bytes, **headers: str) -> httpx.Response:
    """An answer as the network delivers it: a stream read (and decoded) by the client."""
    return httpx.Response(status, headers=headers, stream=httpx.ByteStream(body))


async def test_unreadable_and_unexpected_answers_are_failed_sends_with_backoff(
    outbox_factory: OutboxFactory, fake_cloud: FakeCloud, manual_clock: ManualClock
) -> None:
    outbox, uplink, _ = await make(outbox_factory, fake_cloud, manual_clock, n=3)

    def bug(request: httpx.Request) -> httpx.Response:
        raise RuntimeError("a proxy did something nobody foresaw")

    fake_cloud.script = [
        # a proxy's 502 labelled gzip whose body is plain HTML (httpx.DecodingError before)
        lambda _r: streamed(502, b"<html>Bad Gateway</html>", **{"Content-Encoding": "gzip"}),
        lambda _r: streamed(200, b"\x1f\x8b garbage", **{"Content-Encoding": "gzip"}),
        lambda _r: streamed(200, b"ok", **{"Content-Encoding": "br"}),
        lambda _r: streamed(200, b"{not json"),
        bug,
    ]
    outcomes = [await uplink.send_once() for _ in range(5)]
    assert [o.kind for o in outcomes] == [
        "unreadable",
        "unreadable",
        "unreadable",
        "bad_ack",
        "error",
    ]
    for n, outcome in enumerate(outcomes):  # the same jittered exponential backoff as a 503
        assert 2**n / 2 <= outcome.delay <= 2**n
    assert outbox.stats().records == 3
    assert (await uplink.send_once()).kind == "ok"
    assert fake_cloud.seqs() == [1, 2, 3]


async def test_bodies_are_read_with_limits_on_the_wire_and_inflated(
    outbox_factory: OutboxFactory, fake_cloud: FakeCloud, manual_clock: ManualClock
) -> None:
    outbox, uplink, _ = await make(
        outbox_factory, fake_cloud, manual_clock, n=3, max_response_bytes=64 * 1024
    )
    bomb = gzip.compress(b"0" * (16 * 1024 * 1024))  # 16 MiB inflated, a few KiB on the wire
    assert len(bomb) < 64 * 1024
    fake_cloud.script = [
        lambda _r: streamed(503, bomb, **{"Content-Encoding": "gzip"}),
        lambda _r: streamed(200, b" " * (65 * 1024)),
        lambda _r: streamed(422, gzip.compress(b"x" * (65 * 1024)), **{"Content-Encoding": "gzip"}),
    ]
    kinds = [(await uplink.send_once()).kind for _ in range(3)]
    assert kinds == ["unreadable", "unreadable", "unreadable"]
    assert outbox.stats().records == 3  # nothing refused or deleted on an unreadable answer
    assert outbox.stats().duplicates_dropped == 0
    assert (await uplink.send_once()).kind == "ok"


def test_cloud_url_must_be_https_unless_allowed_for_a_test_network() -> None:
    with pytest.raises(ValidationError, match="must be https"):
        config(cloud_url="http://cloud.example/")
    allowed = config(cloud_url="http://10.0.0.2:8000/", allow_insecure_http=True)
    assert allowed.cloud_url.scheme == "http"
    assert config().cloud_url.scheme == "https"


async def test_a_rolled_back_outbox_is_renumbered_not_acknowledged(
    outbox_factory: OutboxFactory, fake_cloud: FakeCloud, manual_clock: ManualClock
) -> None:
    """The cloud stored boot B through 100; the outbox (restored from a backup) numbered only
    through 12. Before: the 12 records were deleted as if stored. Now: renumbered and stored."""
    outbox, uplink, alarms = await make(outbox_factory, fake_cloud, manual_clock, n=12)
    old_boot = outbox.stats().boot_id
    fake_cloud.stored_through[("gw-1", old_boot)] = 100
    kinds = []
    for _ in range(10):
        if not outbox.stats().records:
            break
        kinds.append((await uplink.send_once()).kind)
    assert kinds[0] == "rebased"
    assert kinds[1:] == ["ok", "ok", "ok"]
    new_boot = outbox.stats().boot_id
    assert new_boot != old_boot
    assert "outbox/rolled_back" in alarms.active
    stored = [item.record for item in fake_cloud.stored]
    assert stored == [reading(i) for i in range(1, 13)]  # every record stored, in order
    assert fake_cloud.stored_through[("gw-1", new_boot)] == 12
    assert await outbox.append([reading(13)]) == 13  # numbering goes on in the new boot


async def test_a_rolled_back_outbox_is_detected_after_new_records_took_its_numbers_again(
    outbox_factory: OutboxFactory, fake_cloud: FakeCloud, manual_clock: ManualClock
) -> None:
    """The restored file held 1..12; while the cloud was away the agent appended 200 more,
    numbered 13..212, but the cloud had stored 13..100 of the lost file. Before: 100 <= the
    outbox's last_seq (212), so 88 records never sent were deleted as if stored."""
    outbox, uplink, alarms = await make(outbox_factory, fake_cloud, manual_clock, n=12)
    old_boot = outbox.stats().boot_id
    fake_cloud.stored_through[("gw-1", old_boot)] = 100
    await outbox.append([reading(i) for i in range(13, 213)])
    assert (await uplink.send_once()).kind == "rebased"
    assert "outbox/rolled_back" in alarms.active
    assert "sent only through 12" in alarms.active["outbox/rolled_back"]
    for _ in range(100):
        if not outbox.stats().records:
            break
        assert (await uplink.send_once()).kind == "ok"
    assert outbox.stats().boot_id != old_boot
    assert [item.record for item in fake_cloud.stored] == [reading(i) for i in range(1, 213)]


async def test_a_cloud_mark_above_the_batch_but_within_what_was_sent_is_not_a_rollback(
    outbox_factory: OutboxFactory, fake_cloud: FakeCloud, manual_clock: ManualClock
) -> None:
    """1..5 were sent and stored but the answer was lost (503), then a 413 halved the batch:
    the cloud's mark (5) is above the next batch (1..2) and above what the file held at start
    (nothing), yet within what this uplink sent."""
    outbox, uplink, alarms = await make(outbox_factory, fake_cloud, manual_clock, n=0)
    await outbox.append([reading(i) for i in range(1, 11)])

    def stored_then_lost(request: httpx.Request) -> httpx.Response:
        fake_cloud.handle(request)  # stores 1..5; its acknowledgement is lost on the way
        return httpx.Response(503)

    fake_cloud.script = [stored_then_lost]
    assert (await uplink.send_once()).kind == "http_503"
    assert fake_cloud.seqs() == [1, 2, 3, 4, 5]
    fake_cloud.script = [lambda _r: httpx.Response(413, json={"error": "too large"})]
    assert (await uplink.send_once()).kind == "too_large"
    assert (await uplink.send_once()).kind == "ok"  # 1..2 sent; the cloud has through 5
    assert "outbox/rolled_back" not in alarms.active
    while outbox.stats().records:
        await uplink.send_once()
    assert fake_cloud.seqs() == list(range(1, 11))


async def test_a_legitimate_resend_after_a_lost_ack_is_not_a_rollback(
    outbox_factory: OutboxFactory, fake_cloud: FakeCloud, manual_clock: ManualClock
) -> None:
    outbox, uplink, alarms = await make(outbox_factory, fake_cloud, manual_clock, n=10)
    fake_cloud.stored_through[("gw-1", outbox.stats().boot_id)] = 10  # stored, ack lost
    assert (await uplink.send_once()).kind == "ok"
    assert outbox.stats().records == 5
    assert "outbox/rolled_back" not in alarms.active


async def test_linger_is_not_stretched_by_a_wall_clock_step_back(
    outbox_factory: OutboxFactory, fake_cloud: FakeCloud, manual_clock: ManualClock
) -> None:
    """Before: linger measured on the wall clock held a record for 3,601 s after a step back."""
    outbox, uplink, _ = await make(
        outbox_factory, fake_cloud, manual_clock, n=0, linger=timedelta(seconds=1)
    )
    task = asyncio.create_task(uplink.run())
    try:
        await outbox.append([reading(1)])
        manual_clock.step_wall(timedelta(hours=-1))
        for _ in range(200):
            await asyncio.sleep(0.01)
            if not outbox.stats().records:
                break
        assert outbox.stats().records == 0
        assert manual_clock.monotonic() < 5  # a second of linger on the monotonic clock
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert [item.record for item in fake_cloud.stored] == [reading(1)]


async def test_the_gateways_other_answers_are_read_with_the_same_limits() -> None:
    """The configuration report and the browse answer were read whole (and inflated whole) by
    ``client.post``: a gzip bomb in answer to either is now a failed call, like in the uplink."""
    config = EdgeConfig.model_validate(
        {
            "gateway_id": "gw-1",
            "cloud": {
                "cloud_url": "https://cloud.example/",
                "token": "t",
                "max_response_bytes": 64 * 1024,
            },
        }
    )
    bomb = gzip.compress(b"0" * (16 * 1024 * 1024))
    answers = [
        streamed(204, bomb, **{"Content-Encoding": "gzip"}),
        streamed(204, b""),
        streamed(204, bomb, **{"Content-Encoding": "gzip"}),
        streamed(204, b""),
    ]
    transport = httpx.MockTransport(lambda _r: answers.pop(0))
    async with httpx.AsyncClient(transport=transport) as http:
        client = ConfigClient(http, config)
        with pytest.raises(ConfigUnavailableError, match="inflates beyond"):
            await client.report(ConfigReport(version=1, applied=True))
        await client.report(ConfigReport(version=1, applied=True))
        with pytest.raises(ConfigUnavailableError, match="inflates beyond"):
            await client.answer_browse(7, BrowseAnswer())
        await client.answer_browse(7, BrowseAnswer())
    assert answers == []
