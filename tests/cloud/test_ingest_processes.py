"""End to end with real processes: two ingest workers and two processors at once, and kill -9."""

from __future__ import annotations

import asyncio
from uuid import uuid4

import pytest

from tests.support.cloud_ingest import count, create_gateway
from tests.support.cloud_processes import SendLog, processor, send_stream, serve, wait_processed

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


async def test_two_workers_and_two_processors_store_and_process_each_record_once(
    timescale_url: str,
) -> None:
    gateways = [await create_gateway(timescale_url, f"gw-{i}") for i in range(4)]
    with (
        serve(timescale_url, "--no-processor", "--no-scheduler") as one,
        serve(timescale_url, "--no-processor", "--no-scheduler") as two,
        processor(timescale_url),
        processor(timescale_url),
    ):
        logs = await asyncio.gather(*(
            send_stream([one.base_url, two.base_url], gw, uuid4(), 600, 50, duplicate=True)
            for gw in gateways
        ))  # fmt: skip
        await wait_processed(timescale_url, expected_streams=4)
    # Every batch went to both workers at once: one stored it, the other acknowledged a resend
    # or was told where the stream goes on; nothing was stored twice, nothing was lost.
    assert all(set(log.statuses) <= {200, 409} for log in logs)
    assert await count(timescale_url, "readings") == 4 * 600
    assert await count(timescale_url, "ingest_batches") == 4 * 12
    assert await count(timescale_url, "ingest_batches", "processed_at IS NULL") == 0
    assert await count(timescale_url, "devices", "device_type = 'sensor'") == 5


async def test_kill_9_mid_stream_then_resend_stores_each_record_once(timescale_url: str) -> None:
    gateway = await create_gateway(timescale_url)
    boot = uuid4()
    log = SendLog()
    current: dict[str, str] = {}
    with serve(timescale_url) as first:
        current["url"] = first.base_url
        sender = asyncio.create_task(
            send_stream(None, gateway, boot, 6000, 500, log=log, url_of=lambda: current["url"])
        )
        await log.reached(1500).wait()
        await asyncio.sleep(0.01)  # the next batch is on its way
        first.kill()
        stored_at_kill = await count(timescale_url, "readings")
        with serve(timescale_url) as second:
            current["url"] = second.base_url
            await sender
            await wait_processed(timescale_url, expected_streams=1)
    assert log.errors >= 1  # the crash was felt by the sender
    assert 1500 <= stored_at_kill < 6000
    assert await count(timescale_url, "readings") == 6000
    assert await count(timescale_url, "readings", "seq BETWEEN 1 AND 6000") == 6000
    assert await count(timescale_url, "processor_streams", "processed_through = 6000") == 1
