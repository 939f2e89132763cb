"""Two API processes and two processors on one database: every effect happens exactly once.

Two gateways of one site stream a warm spell of each of two fridges. Every batch is posted to
both API processes at the same moment (they race on the stream's lock) and two processors share
the streams through SKIP LOCKED. The result must be what one process of each makes: one
excursion per fridge, each lot quarantined by one ledger entry, one alert of each kind per
excursion, every reading stored once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import timedelta
from uuid import uuid4

import httpx
import psycopg
import pytest

from protocols.batch import Batch, Sequenced
from protocols.records import Reading
from tests.support.cloud_ingest import Gateway, count, create_gateway, gz
from tests.support.cloud_processes import processor, serve, wait_processed
from tests.support.coldchain_seed import FRIDGE_A, FRIDGE_B, ROOM, SENSOR, SITE, T0, readings, seed

pytestmark = [pytest.mark.integration, pytest.mark.e2e]
M = timedelta(minutes=1)
WARM = [5.0] * 10 + [9.0] * 30 + [5.0] * 20  # 30 minutes above 8 °C: an action excursion


async def _race(urls: Sequence[str], gateway: Gateway, records: Sequence[Reading]) -> set[int]:
    """Sends ``records`` in batches of 7, each to every URL at once, until all are acknowledged;
    the HTTP statuses seen."""
    boot, acked, statuses = uuid4(), 0, set()
    headers = {**gateway.headers, "Content-Encoding": "gzip", "Content-Type": "application/json"}
    deadline = time.monotonic() + 120
    async with httpx.AsyncClient(timeout=30) as client:
        while acked < len(records):
            assert time.monotonic() < deadline, f"{gateway.gateway_id} stuck at {acked}"
            part = records[acked : acked + 7]
            batch = Batch(gateway_id=gateway.gateway_id, boot_id=boot, sent_at=part[-1].time,
                          records=[Sequenced(seq=acked + 1 + i, record=r)
                                   for i, r in enumerate(part)])  # fmt: skip
            body = gz(batch)
            answers = await asyncio.gather(
                *(client.post(url + "/v1/batches", content=body, headers=headers) for url in urls)
            )
            for answer in answers:
                statuses.add(answer.status_code)
                if answer.status_code == 200:
                    acked = max(acked, int(answer.json()["stored_through"]))
                elif answer.status_code == 409:
                    acked = max(acked, int(answer.json()["detail"][0]["expected_seq"]) - 1)
    return statuses


async def test_two_apis_and_two_processors_make_each_effect_once(timescale_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
        lots = await seed(conn)
        await conn.commit()
    gw_a = await create_gateway(timescale_url, "hz-gw-a", SITE)
    gw_b = await create_gateway(timescale_url, "hz-gw-b", SITE)
    fridge_a = readings(SENSOR[FRIDGE_A], T0, WARM)
    room = readings(SENSOR[ROOM], T0, [22.0] * 60)
    fridge_b = readings(SENSOR[FRIDGE_B], T0 + 5 * M, WARM)
    with (
        serve(timescale_url, "--no-processor", "--no-scheduler") as one,
        serve(timescale_url, "--no-processor", "--no-scheduler") as two,
        processor(timescale_url),
        processor(timescale_url),
    ):
        urls = [one.base_url, two.base_url]
        seen = await asyncio.gather(
            _race(urls, gw_a, sorted(fridge_a + room, key=lambda r: r.time)),
            _race(urls, gw_b, fridge_b),
        )
        await wait_processed(timescale_url, expected_streams=2, timeout_s=120)
    assert set().union(*seen) <= {200, 409}
    assert await count(timescale_url, "readings") == 180
    assert await count(timescale_url, "ingest_batches", "processed_at IS NULL") == 0
    async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
        cur = await conn.execute(
            "SELECT location_id, kind, level, started_at, ended_at FROM excursions"
            " ORDER BY location_id"
        )
        excursions = [(r[0], r[1], r[2], (r[3] - T0) / M, (r[4] - T0) / M) for r in
                      await cur.fetchall()]  # fmt: skip
        cur = await conn.execute(
            "SELECT lot_id FROM ledger_entries WHERE movement = 'quarantine' ORDER BY lot_id"
        )
        quarantined = [int(r[0]) for r in await cur.fetchall()]
        cur = await conn.execute(
            "SELECT kind, count(*) FROM alerts WHERE kind IN"
            " ('excursion_opened', 'quarantine', 'excursion_closed') GROUP BY kind"
        )
        alerts = {str(k): int(n) for k, n in await cur.fetchall()}
    assert excursions == [
        (FRIDGE_A, "high", "action", 10.0, 40.0),
        (FRIDGE_B, "high", "action", 15.0, 45.0),
    ]
    assert quarantined == sorted([lots["a1"], lots["a2"], lots["b1"]])
    assert alerts == {"excursion_opened": 2, "quarantine": 2, "excursion_closed": 2}
