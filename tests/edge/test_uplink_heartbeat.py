"""The uplink's heartbeat (issue 14 item 3): sent when nothing else went to the cloud for
``heartbeat_interval``, never while batches go, best effort (a failure is logged, the uplink and
the outbox carry on)."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx
import psycopg
import pytest
from pydantic import ValidationError

from edge.clock import ManualClock
from edge.outbox import Outbox
from edge.uplink import Uplink, UplinkConfig
from protocols.heartbeat import HEARTBEAT_PATH, Heartbeat
from tests.edge.conftest import BIG, T0, TOKEN, FakeCloud, OutboxFactory, reading, uplink_config

EVERY = timedelta(seconds=60)


class SteppedClock:
    """A clock that moves only when the test steps it; a sleep ends once the clock has moved
    past it. (``ManualClock`` ends every sleep at once by moving time itself, so a heartbeat
    sleeping beside the send loop would move the send loop's time too.)"""

    def __init__(self, start: datetime = T0) -> None:
        self._wall = start
        self._mono = 0.0
        self._moved = asyncio.Event()

    def now(self) -> datetime:
        return self._wall

    def monotonic(self) -> float:
        return self._mono

    async def sleep(self, seconds: float) -> None:
        target = self._mono + max(0.0, seconds)
        while self._mono < target:
            await self._moved.wait()

    async def step(self, seconds: float) -> None:
        """Moves on by ``seconds``, then gives the woken tasks (real) time to act."""
        self._mono += seconds
        self._wall += timedelta(seconds=seconds)
        moved, self._moved = self._moved, asyncio.Event()
        moved.set()
        await asyncio.sleep(0.005)


@dataclass
class Cloud:
    """The fake cloud's batches, plus the heartbeat route; every request's path and (monotonic)
    time in order. ``beat`` answers heartbeats (204 unless a test says otherwise)."""

    batches: FakeCloud
    clock: ManualClock | SteppedClock
    log: list[tuple[str, float]] = field(default_factory=list)
    beats: list[Heartbeat] = field(default_factory=list)
    beat: Callable[[httpx.Request], httpx.Response] = lambda _: httpx.Response(204)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.log.append((request.url.path, self.clock.monotonic()))
        if request.url.path != HEARTBEAT_PATH:
            return self.batches.handle(request)
        assert request.headers["authorization"] == f"Bearer {TOKEN}"
        self.beats.append(Heartbeat.model_validate_json(request.content))
        return self.beat(request)

    def kinds(self) -> list[str]:
        return ["beat" if path == HEARTBEAT_PATH else "batch" for path, _ in self.log]


async def start(
    outbox_factory: OutboxFactory, fake_cloud: FakeCloud, clock: ManualClock | SteppedClock,
    n: int,
) -> tuple[Outbox, Uplink, Cloud]:  # fmt: skip
    cloud = Cloud(fake_cloud, clock)
    outbox = await outbox_factory(BIG)
    if n:
        await outbox.append([reading(i) for i in range(1, n + 1)])
    client = httpx.AsyncClient(transport=httpx.MockTransport(cloud.handle))
    config = uplink_config(heartbeat_interval=EVERY)
    return outbox, Uplink("gw-1", outbox, client, config, clock, rng=random.Random(7)), cloud


async def test_an_idle_uplink_beats_every_interval_and_not_while_it_sends(
    outbox_factory: OutboxFactory, fake_cloud: FakeCloud
) -> None:
    clock = SteppedClock()
    outbox, uplink, cloud = await start(outbox_factory, fake_cloud, clock, n=12)
    task = asyncio.create_task(uplink.run())
    try:
        for _ in range(200):  # 200 s: the batches, then idle
            await clock.step(1)
        assert fake_cloud.seqs() == list(range(1, 13))
        await outbox.append([reading(i) for i in range(13, 16)])  # records again at 200 s
        for _ in range(150):
            await clock.step(1)
        assert not task.done()
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert fake_cloud.seqs() == list(range(1, 16))
    kinds, times = cloud.kinds(), [at for _, at in cloud.log]
    assert kinds == ["batch"] * 3 + ["beat"] * 3 + ["batch"] + ["beat"] * 2, cloud.log
    # Each heartbeat comes one interval after the last request of any kind, not before.
    gaps = [times[i] - times[i - 1] for i, kind in enumerate(kinds) if kind == "beat"]
    assert all(60 <= gap <= 61 for gap in gaps), cloud.log
    assert times[6] - 200 <= 2  # the new records went at once, heartbeat or not
    assert {b.interval_seconds for b in cloud.beats} == {60}
    assert outbox.stats().records == 0


async def test_sending_batches_puts_the_heartbeat_off(
    outbox_factory: OutboxFactory, fake_cloud: FakeCloud, manual_clock: ManualClock
) -> None:
    _, uplink, cloud = await start(outbox_factory, fake_cloud, manual_clock, n=12)
    beat = uplink.heartbeat
    assert beat is not None
    manual_clock.advance(50)
    assert beat.due_in() == pytest.approx(10)
    for _ in range(3):  # a batch every 30 s: never a minute without sending
        assert (await uplink.send_once()).kind == "ok"
        assert beat.due_in() == pytest.approx(60)
        manual_clock.advance(30)
        assert beat.due_in() == pytest.approx(30)
    manual_clock.advance(30)
    assert beat.due_in() == pytest.approx(0)
    assert await beat.beat()
    assert beat.due_in() == pytest.approx(60)
    assert cloud.kinds() == ["batch"] * 3 + ["beat"]
    sent = cloud.beats[0]
    assert sent.sent_at == manual_clock.now()


async def test_a_failing_heartbeat_is_logged_once_and_harms_nothing(
    outbox_factory: OutboxFactory, fake_cloud: FakeCloud, caplog: pytest.LogCaptureFixture
) -> None:
    clock = SteppedClock()
    outbox, uplink, cloud = await start(outbox_factory, fake_cloud, clock, n=7)
    answers: list[Callable[[httpx.Request], httpx.Response]] = []

    def refused(_: httpx.Request) -> httpx.Response:
        return httpx.Response(503, json={"error": "down"})

    def unreachable(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    def unforeseen(_: httpx.Request) -> httpx.Response:
        raise RuntimeError("a bug in the transport")

    answers += [refused, unreachable, unforeseen, refused]
    cloud.beat = lambda request: answers.pop(0)(request) if answers else httpx.Response(204)
    heartbeat = uplink.heartbeat
    assert heartbeat is not None
    with caplog.at_level(logging.DEBUG, logger="edge.heartbeat"):
        task = asyncio.create_task(uplink.run())
        try:
            for _ in range(400):
                await clock.step(1)
                if heartbeat.sent:
                    break
            assert not task.done()  # the uplink outlived every failure
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        assert heartbeat.sent == 1
        assert heartbeat.failed == 4
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1  # the first failure of the run; the others at debug level
        assert "503" in warnings[0].getMessage()
        assert [r for r in caplog.records if r.levelno == logging.ERROR]  # the unforeseen one
        assert any("takes heartbeats again" in r.getMessage() for r in caplog.records)
    # Meanwhile the batches went and were acknowledged as usual; nothing else was touched.
    assert fake_cloud.seqs() == list(range(1, 8))
    assert outbox.stats().records == 0
    assert uplink.status.consecutive_failures == 0
    # Another failure after a success warns again.
    answers.append(refused)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="edge.heartbeat"):
        assert not await heartbeat.beat()
    assert len(caplog.records) == 1


def test_the_interval_is_configured_bounded_or_off() -> None:
    base = {"cloud_url": "https://cloud.example/", "token": TOKEN}
    assert UplinkConfig.model_validate(base).heartbeat_interval == EVERY  # the default
    for off in (0, None, "PT0S"):
        config = UplinkConfig.model_validate(base | {"heartbeat_interval": off})
        assert config.heartbeat_interval is None
    assert UplinkConfig.model_validate(base | {"heartbeat_interval": "PT1H"}).heartbeat_interval
    for wrong in (5, 9.5, 10.5, 3601, -1):
        with pytest.raises(ValidationError, match="heartbeat_interval must be whole seconds"):
            UplinkConfig.model_validate(base | {"heartbeat_interval": wrong})


async def test_no_heartbeat_when_it_is_off(
    outbox_factory: OutboxFactory, fake_cloud: FakeCloud, manual_clock: ManualClock
) -> None:
    outbox = await outbox_factory(BIG)
    config = uplink_config(heartbeat_interval=0)
    uplink = Uplink("gw-1", outbox, fake_cloud.client(), config, manual_clock)
    assert uplink.heartbeat is None
    task = asyncio.create_task(uplink.run())
    await asyncio.sleep(0.05)
    manual_clock.advance(3600)
    await outbox.append([reading(1)])
    for _ in range(200):
        await asyncio.sleep(0.01)
        if fake_cloud.seqs():
            break
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [r.url.path for r in fake_cloud.requests] == ["/v1/batches"]


@pytest.mark.integration
async def test_the_real_cloud_takes_the_heartbeat(
    timescale_url: str, outbox_factory: OutboxFactory, manual_clock: ManualClock
) -> None:
    """The edge's heartbeat against the cloud's route (in-process, real TimescaleDB)."""
    from tests.support.cloud_ingest import app_client, create_gateway

    gateway = await create_gateway(timescale_url, "gw-beat")
    outbox = await outbox_factory(BIG)
    config = UplinkConfig.model_validate(
        {"cloud_url": "http://cloud", "allow_insecure_http": True, "token": gateway.token,
         "heartbeat_interval": "PT2M"}
    )  # fmt: skip
    async with app_client(timescale_url) as client:
        uplink = Uplink("gw-beat", outbox, client, config, manual_clock)
        assert uplink.heartbeat is not None
        assert await uplink.heartbeat.beat()
    async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
        cur = await conn.execute(
            "SELECT last_contact_at IS NOT NULL, heartbeat_interval FROM gateways"
            " WHERE gateway_id = 'gw-beat'"
        )
        assert await cur.fetchone() == (True, timedelta(minutes=2))
