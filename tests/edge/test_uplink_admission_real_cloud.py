"""The cloud's per-record refusals (physics, time horizons) and its chunk bound, against the real
edge uplink: every good record of a batch still arrives, the refused ones arrive as dead letters
with the cloud's reason, and a batch spanning too many chunks is split by the edge, not retried
for ever (issues 12.3, 23.1 and 23.7)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Literal
from uuid import uuid4

import psycopg
import pytest

from edge.clock import ManualClock
from edge.outbox import OutboxLimits
from edge.uplink import Uplink, UplinkConfig
from protocols.batch import Batch, Sequenced
from protocols.records import Reading
from tests.edge.conftest import OutboxFactory
from tests.support.cloud_ingest import app_client, count, create_gateway, post, viewer_headers

pytestmark = pytest.mark.integration

LIMITS = OutboxLimits(max_records=1_000_000, max_bytes=1 << 30)
NOW = datetime.now(UTC).replace(microsecond=0)


def at(
    offset: timedelta, value: float = 5.0, unit: Literal["degC", "percentRH"] = "degC"
) -> Reading:
    t = NOW + offset
    return Reading(sensor_id="probe/t", time=t, value=value, unit=unit, received_at=t)


def config(token: str) -> UplinkConfig:
    return UplinkConfig.model_validate(
        {
            "cloud_url": "http://cloud",  # the app in-process, no network
            "allow_insecure_http": True,
            "token": token,
            "max_batch_records": 500,
        }
    )


@pytest.mark.parametrize("future_horizon", [None, "P7D"])
async def test_refused_records_become_dead_letters_and_every_good_one_arrives(
    timescale_url: str,
    outbox_factory: OutboxFactory,
    manual_clock: ManualClock,
    future_horizon: str | None,
) -> None:
    gateway = await create_gateway(timescale_url, "gw-edge")
    outbox = await outbox_factory(LIMITS)
    hour = timedelta(hours=1)
    records = [
        at(-3 * hour, 4.0),
        at(-3 * hour + timedelta(minutes=1), 1e308),  # would overflow avg() in the rollups
        at(-timedelta(days=400)),  # beyond the one-year backlog horizon
        at(timedelta(days=30), 5.0),  # a month ahead: stored, not judged, unless a horizon is set
        at(-2 * hour, 140.0, "percentRH"),  # no such humidity
        at(-2 * hour, -273.16),  # below absolute zero
        at(-hour, 5.5),
        at(timedelta(hours=2), 6.0),  # ahead: stored, not judged
    ]
    await outbox.append(records)
    settings = {"admission": {"future_horizon": future_horizon}}
    async with app_client(timescale_url, **settings) as client:
        uplink = Uplink("gw-edge", outbox, client, config(gateway.token), manual_clock,
                        rng=random.Random(1))  # fmt: skip
        assert (await uplink.send_once()).kind == "dead_lettered"
        assert (await uplink.send_once()).kind == "ok"
        viewer = await viewer_headers(timescale_url)
        listed = await client.get("/v1/gateways/gw-edge", headers=viewer)
    assert outbox.stats().records == 0
    async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
        cur = await conn.execute("SELECT value FROM readings ORDER BY seq")
        stored = [row[0] for row in await cur.fetchall()]
        cur = await conn.execute("SELECT seq, reason FROM dead_letters ORDER BY seq")
        letters = await cur.fetchall()
    reasons = " | ".join(reason for _, reason in letters)
    assert "1e+308 degC is outside the physical range" in reasons
    assert "140 percentRH is outside the physical range 0..100" in reasons
    assert "-273.16 degC" in reasons
    assert "older than the backlog horizon" in reasons
    refusals = {"out_of_range": 3, "too_old": 1}
    if future_horizon is None:
        assert stored == [4.0, 5.0, 5.5, 6.0]
        assert [seq for seq, _ in letters] == [2, 3, 5, 6]
    else:
        assert stored == [4.0, 5.5, 6.0]
        assert [seq for seq, _ in letters] == [2, 3, 4, 5, 6]
        assert "more than 7 days, 0:00:00 ahead of the cloud's time" in reasons
        refusals["too_far_ahead"] = 1
    assert listed.json()["refusals"] == refusals | {"dead_letter": len(letters)}


async def test_a_batch_over_the_chunk_bound_is_split_by_the_edge_until_it_fits(
    timescale_url: str, outbox_factory: OutboxFactory, manual_clock: ManualClock
) -> None:
    gateway = await create_gateway(timescale_url, "gw-edge")
    outbox = await outbox_factory(LIMITS)
    # a logger's backlog: one reading a day for 40 days, 40 daily chunks of `readings`
    backlog = [at(-timedelta(days=d, hours=1), 5.0) for d in range(40, 0, -1)]
    numbered = [Sequenced(seq=i + 1, record=r) for i, r in enumerate(backlog)]
    whole = Batch(gateway_id="gw-edge", boot_id=uuid4(), sent_at=NOW, records=numbered)
    await outbox.append(backlog)
    async with app_client(timescale_url, admission={"max_chunks_per_batch": 8}) as client:
        refused = await post(client, gateway, whole)
        assert refused.status_code == 422
        assert "40 chunks" in refused.json()["error"]
        assert refused.json()["detail"][0]["loc"] == ["records"]
        uplink = Uplink("gw-edge", outbox, client, config(gateway.token), manual_clock,
                        rng=random.Random(1))  # fmt: skip
        kinds: list[str] = []
        while outbox.stats().records and len(kinds) < 50:
            kinds.append((await uplink.send_once()).kind)
    # halved until 8 chunks fit, then it grows again after each success: bounded, never stuck
    assert set(kinds) == {"bisect", "ok"}, kinds
    assert outbox.stats().records == 0
    assert await count(timescale_url, "readings") == 40
    assert await count(timescale_url, "dead_letters") == 0
