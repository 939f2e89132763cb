"""The processor's cold-chain step on mounted sensors: with the models, and without, same run.

``bench/ingest.py`` measures the processor over sensors that are not mounted at any location,
so the cold-chain step judges none of them and its models never run. Here the test site of
``tests/support/coldchain_seed`` (two fridges and a controlled room, each with a mounted logger)
is fed a day of one-minute readings from the thermal simulator, stored as batches the way ingest
stores them, and processed by the real ``Processor`` with the ``ColdChainStep``: once with the
early warning and anomaly models, once with a step whose models are switched off (rules,
excursions, state and checkpoints only), each on a fresh database.

    .venv/bin/python -m bench.coldchain [--hours 24] [--batch 500]

Timing never fails the run; figures are printed only.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Sequence
from datetime import timedelta

import psycopg

from cloud.coldchain.step import ColdChainStep
from cloud.ingest.writer import store_batch
from cloud.processing.processor import Processor
from cloud.storage.database import make_pool
from coldtrace.devservices import PostgresService
from protocols.batch import Batch, Sequenced
from protocols.records import Reading
from tests.support.coldchain_seed import FAST, T0, Site, make_site, simulate, site_units
from tests.support.databases import DatabaseFactory


class RulesOnlyStep(ColdChainStep):
    """The cold-chain step with its models switched off: the baseline of the same run."""

    async def _models(self, *args: object) -> None:
        return None


async def store(site: Site, records: Sequence[Reading], batch: int) -> None:
    """Stores the readings as ingest does, without processing them."""
    async with await psycopg.AsyncConnection.connect(site.url) as conn:
        for i in range(0, len(records), batch):
            part = records[i : i + batch]
            seqd = [Sequenced(seq=i + j + 1, record=r) for j, r in enumerate(part)]
            sent = part[-1].received_at
            b = Batch(gateway_id=site.gateway_id, boot_id=site.boot, sent_at=sent, records=seqd)
            await store_batch(conn, b)


async def run(url: str, step: ColdChainStep, hours: int, batch: int) -> tuple[float, int]:
    """Seconds the processor takes over the stored batches, and the readings processed."""
    pool = make_pool(url, max_size=2)
    async with pool:
        site = await make_site(url, pool)
        units = site_units(T0 - timedelta(hours=2))
        records = simulate(units, None, T0, T0 + timedelta(hours=hours))
        await store(site, records, batch)
        processor = Processor(pool, [step], FAST, listen_url=url)
        started = time.perf_counter()
        await processor.drain()
        return time.perf_counter() - started, len(records)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=int, default=24)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    factory = DatabaseFactory(PostgresService.default().start())
    try:
        results: dict[str, tuple[float, int]] = {}
        steps = (("with models", ColdChainStep()), ("rules only (models off)", RulesOnlyStep()))
        for name, step in steps:
            url = factory.create("timescaledb")
            results[name] = asyncio.run(run(url, step, args.hours, args.batch))
        print(f"{'cold-chain step, 3 mounted sensors':<40}{'seconds':>10}{'readings/s':>14}")
        for name, (seconds, n) in results.items():
            print(f"{name:<40}{seconds:>10.2f}{n / seconds:>14,.0f}")
        print(f"(one-minute readings, {args.hours} h per sensor, batches of {args.batch})")
    finally:
        factory.drop_all()


if __name__ == "__main__":
    main()
