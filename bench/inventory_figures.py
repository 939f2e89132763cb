"""Inventory figures on a large ledger: ``GET /v1/sites/{id}/figures`` without HTTP.

Builds the recall benchmark's ledger (``bench/recall.py``: ``--lots`` lots of 50 units over
200 products in 2025, received, put away into 40 fridges, one unit in ten issued; 10,000 lots
≈ 1.05 million entries) and times ``site_figures`` for the site over windows of 30 and 365
days ending 2025-12-31. The figures read the site's whole ledger history (stock levels are the
running sum of every movement), so the baseline in the same run is the floor of any such
reading: one aggregate over all the site's entries (``sum(quantity)`` grouped by product and
day, the first half of the figures' own query).

Run: ``.venv/bin/python -m bench.inventory_figures [--lots 10000] [--samples 5]``. Never fails
on timing.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from datetime import UTC, datetime

import psycopg

from bench.recall import UNITS_PER_LOT, _build
from cloud.transfers.figures_store import site_figures
from coldtrace.devservices import PostgresService
from tests.support.databases import DatabaseFactory

NOW = datetime(2025, 12, 31, 18, 0, tzinfo=UTC)
FLOOR = (
    "SELECT l.gtin, (e.effective_at AT TIME ZONE 'UTC')::date, sum(e.quantity)"
    " FROM ledger_entries e JOIN lots l USING (lot_id) GROUP BY 1, 2"
)


def _ms(samples: list[float]) -> str:
    return f"median {statistics.median(samples) * 1000:8.1f} ms   max {max(samples) * 1000:8.1f} ms"


async def _measure(url: str, samples: int) -> None:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        for days in (30, 365):
            took: list[float] = []
            for _ in range(samples):
                start = time.perf_counter()
                f = await site_figures(
                    conn, "s1", now=NOW, days=days, service_level=0.95, lead_time_days=None
                )
                took.append(time.perf_counter() - start)
            print(f"site figures, {days:3d} days, {len(f.products)} products   {_ms(took)}")
        floor: list[float] = []
        for _ in range(samples):
            start = time.perf_counter()
            await (await conn.execute(FLOOR)).fetchall()
            floor.append(time.perf_counter() - start)
        print(f"baseline: one aggregate over the ledger      {_ms(floor)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lots", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=5)
    args = parser.parse_args()
    factory = DatabaseFactory(PostgresService.default().start())
    try:
        url = factory.create("postgresql")
        started = time.perf_counter()
        entries = asyncio.run(_build(url, args.lots))
        built = time.perf_counter() - started
        print(
            f"ledger: {entries:,} entries, {args.lots * UNITS_PER_LOT:,} units, "
            f"{args.lots:,} lots (built in {built:.1f} s)"
        )
        asyncio.run(_measure(url, args.samples))
    finally:
        factory.drop_all()


if __name__ == "__main__":
    main()
