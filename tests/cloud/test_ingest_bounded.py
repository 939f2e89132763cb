"""Bounded waits in ingest: a locked stream answers 503 quickly and never exhausts the pool."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from uuid import uuid4

import psycopg
import pytest

from cloud.ingest.gate import ClientGoneError, StreamBusyError, StreamGate
from tests.support.cloud_ingest import app_client, batch_of, count, create_gateway, post

BOOT = uuid4()


async def _never_gone() -> bool:
    return False


async def test_the_gate_serialises_one_stream_and_bounds_the_wait() -> None:
    gate = StreamGate(timedelta(milliseconds=300), poll=timedelta(milliseconds=50))
    gone = False

    async def client_gone() -> bool:
        return gone

    async with gate.hold("gw-1", BOOT, _never_gone):
        started = time.monotonic()
        with pytest.raises(StreamBusyError):
            async with gate.hold("gw-1", BOOT, _never_gone):
                pass
        assert 0.25 < time.monotonic() - started < 2
        async with gate.hold("gw-2", BOOT, _never_gone):  # other streams are not held up
            assert gate.streams == 2
        waiting = asyncio.create_task(gate.hold("gw-1", BOOT, client_gone).__aenter__())
        await asyncio.sleep(0.1)
        gone = True  # the client disconnects while its batch waits
        with pytest.raises(ClientGoneError):
            await waiting
    assert gate.streams == 0  # nothing left behind
    async with gate.hold("gw-1", BOOT, _never_gone):
        pass


@pytest.mark.integration
async def test_a_locked_stream_cannot_exhaust_the_pool(timescale_url: str) -> None:
    one, two = await create_gateway(timescale_url), await create_gateway(timescale_url, "gw-2")
    options = {"pool_max_size": 3, "stream_wait": "PT1S",
               "ingest_timeouts": {"lock": "PT1S"}}  # fmt: skip
    async with app_client(timescale_url, **options) as client:
        assert (await post(client, one, batch_of("gw-1", BOOT, 1, 5))).status_code == 200
        async with await psycopg.AsyncConnection.connect(timescale_url) as holder:
            # Another worker's transaction holds gw-1's stream (e.g. stuck behind a slow disk).
            await holder.execute(
                "SELECT 1 FROM gateway_streams WHERE gateway_id = 'gw-1' FOR UPDATE"
            )
            started = time.monotonic()
            resends = [
                asyncio.create_task(post(client, one, batch_of("gw-1", BOOT, 6, 5)))
                for _ in range(10)
            ]
            await asyncio.sleep(0.2)
            other = await post(client, two, batch_of("gw-2", uuid4(), 1, 5))
            other_took = time.monotonic() - started
            answers = await asyncio.gather(*resends)
            all_took = time.monotonic() - started
            await holder.rollback()
        assert other.status_code == 200
        assert other_took < 5  # before the fix: 503 after the 10 s pool timeout
        assert [a.status_code for a in answers] == [503] * 10
        assert all(a.headers["Retry-After"] for a in answers)
        assert all_took < 8  # each waits at most stream_wait (1 s); a loaded machine adds
        assert {a.json()["error"].split(":")[0] for a in answers} == {"stream_busy"}
        again = await post(client, one, batch_of("gw-1", BOOT, 6, 5))
        assert again.status_code == 200
        assert again.json()["stored_through"] == 10
    assert await count(timescale_url, "readings", "gateway_id = 'gw-1'") == 10
