"""The database restarts mid-stream: ingest answers 503, the edge retries, nothing is lost.

This restarts the shared private cluster, so it stays in this one module and is brief (a fast
shutdown: no crash recovery delays the other tests); the cluster is always started again, even
when the test fails.
"""

from __future__ import annotations

import asyncio
import os
from uuid import uuid4

import pytest

from coldtrace.devservices import PostgresService
from tests.support.cloud_ingest import count, create_gateway
from tests.support.cloud_processes import SendLog, send_stream, serve, wait_processed

pytestmark = [
    pytest.mark.integration,
    pytest.mark.e2e,
    pytest.mark.skipif(
        bool(os.environ.get("COLDTRACE_TEST_DATABASE_URL")),
        reason="restarts the private cluster; not done to an external database",
    ),
]


async def test_a_database_restart_mid_stream_loses_and_duplicates_nothing(
    timescale_url: str,
) -> None:
    cluster = PostgresService.default()
    gateway = await create_gateway(timescale_url)
    log = SendLog()
    with serve(timescale_url) as cloud:
        sender = asyncio.create_task(
            send_stream([cloud.base_url], gateway, uuid4(), 4000, 200, log=log, deadline_s=90)
        )
        await log.reached(1000).wait()
        try:
            await asyncio.to_thread(cluster.stop, "fast")  # no crash recovery: others share it
            await asyncio.sleep(0.5)  # requests meet a database that is not there
        finally:
            await asyncio.to_thread(cluster.start)
        await sender
        await wait_processed(timescale_url, expected_streams=1, timeout_s=60)
        health = await asyncio.to_thread(_health, cloud.base_url)
    assert 503 in log.statuses or log.errors > 0
    assert health == 200  # the service recovered by itself
    assert await count(timescale_url, "readings") == 4000
    assert await count(timescale_url, "ingest_batches", "processed_at IS NOT NULL") == await count(
        timescale_url, "ingest_batches"
    )


def _health(base: str) -> int:
    import httpx

    return httpx.get(base + "/healthz", timeout=10).status_code
