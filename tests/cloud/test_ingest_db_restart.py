"""The database restarts mid-stream: ingest answers 503, the edge retries, nothing is lost.

The cluster is the test's own (the suite runs in parallel on one shared cluster, which must
not go away under other tests), so it can be stopped as a crash would: an immediate shutdown,
then crash recovery on start.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import pytest

from coldtrace.devservices import PostgresService
from tests.support.cloud_ingest import count, create_gateway
from tests.support.cloud_processes import SendLog, send_stream, serve, wait_processed
from tests.support.databases import DatabaseFactory

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


@pytest.fixture
def cluster() -> Iterator[PostgresService]:
    """A cluster of the test's own, in a folder its unprivileged user can reach."""
    folder = Path(tempfile.mkdtemp(prefix="coldtrace-restart-", dir="/var/tmp"))
    folder.chmod(0o755)
    service = PostgresService(folder / "cluster", PostgresService.default().user)
    service.start()
    try:
        yield service
    finally:
        service.stop("immediate")
        shutil.rmtree(folder, ignore_errors=True)


async def test_a_database_restart_mid_stream_loses_and_duplicates_nothing(
    cluster: PostgresService,
) -> None:
    timescale_url = await asyncio.to_thread(DatabaseFactory(cluster.url).create, "timescaledb")
    gateway = await create_gateway(timescale_url)
    log = SendLog()
    with serve(timescale_url) as cloud:
        sender = asyncio.create_task(
            send_stream([cloud.base_url], gateway, uuid4(), 4000, 200, log=log, deadline_s=90)
        )
        await log.reached(1000).wait()
        try:
            await asyncio.to_thread(cluster.stop, "immediate")  # as a crash: recovery on start
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
