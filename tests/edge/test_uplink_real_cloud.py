"""The uplink against the real cloud ingest (``POST /v1/batches`` in-process, real TimescaleDB):
the contract both sides read, exercised end to end."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from edge.alarms import LocalAlarmConfig, LocalAlarms
from edge.clock import ManualClock
from edge.outbox import OutboxLimits
from edge.uplink import Uplink, UplinkConfig
from protocols.records import DeviceState, DeviceStatus
from tests.edge.conftest import OutboxFactory, reading
from tests.support.cloud_ingest import app_client, count, create_gateway

pytestmark = pytest.mark.integration

LIMITS = OutboxLimits(max_records=1_000_000, max_bytes=1 << 30)


def uplink_config(token: str) -> UplinkConfig:
    return UplinkConfig.model_validate(
        {
            "cloud_url": "http://cloud",
            "allow_insecure_http": True,
            "token": token,
            "max_batch_records": 500,
        }
    )


async def test_backlog_drains_into_the_database_exactly_once(
    timescale_url: str, outbox_factory: OutboxFactory, manual_clock: ManualClock
) -> None:
    gateway = await create_gateway(timescale_url, "gw-edge")
    outbox = await outbox_factory(LIMITS)
    await outbox.append([reading(i) for i in range(1200)])
    async with app_client(timescale_url) as client:
        uplink = Uplink("gw-edge", outbox, client, uplink_config(gateway.token), manual_clock)
        kinds = [(await uplink.send_once()).kind for _ in range(3)]
        assert kinds == ["ok", "ok", "ok"]
        assert outbox.stats().records == 0
        # the stream continues where it was acknowledged
        await outbox.append([reading(2000)])
        assert (await uplink.send_once()).kind == "ok"
    assert await count(timescale_url, "readings", "gateway_id = 'gw-edge'") == 1201


async def test_a_record_the_cloud_refuses_arrives_as_a_dead_letter(
    timescale_url: str, outbox_factory: OutboxFactory, manual_clock: ManualClock
) -> None:
    gateway = await create_gateway(timescale_url, "gw-edge")
    outbox = await outbox_factory(LIMITS)
    # valid for the contract, but PostgreSQL cannot store a NUL in text: the cloud refuses it
    bad = DeviceStatus(
        device_id="door-1",
        device_type="sensor",
        state=DeviceState.ONLINE,
        detail="contact\x00open",
        time=manual_clock.now(),
    )
    await outbox.append([reading(1), bad, reading(2)])
    alarms = LocalAlarms("gw-edge", LocalAlarmConfig(), manual_clock, lambda _sensor: timedelta(0))
    async with app_client(timescale_url) as client:
        uplink = Uplink(
            "gw-edge",
            outbox,
            client,
            uplink_config(gateway.token),
            manual_clock,
            alarms=alarms,
            rng=random.Random(1),
        )
        assert (await uplink.send_once()).kind == "dead_lettered"
        assert (await uplink.send_once()).kind == "ok"
    assert outbox.stats().records == 0
    assert await count(timescale_url, "readings", "gateway_id = 'gw-edge'") == 2
    assert await count(timescale_url, "dead_letters", "gateway_id = 'gw-edge' AND seq = 2") == 1
    assert "uplink.dead_letter" in alarms.active
    kept = await outbox.dead_letters()
    assert kept[0].seq == 2
    assert "NUL" in kept[0].reason


async def test_an_unknown_token_keeps_everything(
    timescale_url: str, outbox_factory: OutboxFactory, manual_clock: ManualClock
) -> None:
    outbox = await outbox_factory(LIMITS)
    await outbox.append([reading(1)])
    async with app_client(timescale_url) as client:
        uplink = Uplink("gw-edge", outbox, client, uplink_config("not-a-token"), manual_clock)
        outcome = await uplink.send_once()
    assert outcome.kind == "http_401"
    assert outbox.stats().records == 1
