"""The unit temperature record as PDF: a month of one-minute readings of one unit.

Loads ``--days`` (default 31) of one-minute readings of one sensor into a fresh TimescaleDB
database (``bench.unit_history``'s loader: hypertable, then the rollup job), then times
``POST /v1/reports/unit`` (PDF, archived; in-process app) over the whole range, split into
reading the figures (the dashboard's history at hourly rollups) and printing the PDF. The
target is under 5 s for a month. ``--raw`` also times a 2-day record (every reading drawn).

    .venv/bin/python -m bench.report_pdf [--days 31] [--runs 3]

Timing never fails the run; figures are printed only.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import psycopg

from bench.unit_history import END, _load, _rollups
from cloud.app import create_app
from cloud.auth.model import Role
from cloud.auth.service import add_user
from cloud.config import CloudSettings
from cloud.reports.unit_data import unit_record
from cloud.reports.unit_report import render_unit
from coldtrace.devservices import PostgresService
from tests.support.databases import DatabaseFactory


async def _split(url: str, span: timedelta) -> tuple[float, float, int]:
    """Seconds to read the figures, seconds to print, PDF size."""
    async with await psycopg.AsyncConnection.connect(url) as conn:
        started = time.perf_counter()
        record = await unit_record(conn, "u-1", start=END - span, end=END,
                                   default_silence=timedelta(minutes=15))  # fmt: skip
        read = time.perf_counter() - started
    started = time.perf_counter()
    pdf = render_unit(record, "pdf", generated=datetime.now(UTC))
    return read, time.perf_counter() - started, len(pdf.content)


async def _measure(url: str, days: int, runs: int, raw: bool) -> None:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        token = await add_user(conn, "bench", Role.VIEWER)
        await conn.commit()
    settings = CloudSettings.model_validate(
        {"database_url": url, "run_processor": False, "run_scheduler": False}
    )
    app = create_app(settings)
    spans = [(f"{days} days", timedelta(days=days))]
    if raw:
        spans.append(("2 days", timedelta(days=2)))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://cloud",
                                     timeout=300) as client:  # fmt: skip
            auth = {"Authorization": f"Bearer {token}"}
            for label, span in spans:
                body = {"location_id": "u-1", "start": (END - span).isoformat(),
                        "end": END.isoformat(), "format": "pdf"}  # fmt: skip
                times = []
                for _ in range(runs):
                    started = time.perf_counter()
                    answer = await client.post("/v1/reports/unit", json=body, headers=auth)
                    times.append(time.perf_counter() - started)
                    assert answer.status_code == 201, answer.text
                read, printing, size = await _split(url, span)
                print(
                    f"  {label:8}: POST /v1/reports/unit (PDF, archived) median"
                    f" {statistics.median(times):.2f} s, max {max(times):.2f} s"
                    f"  [figures {read:.2f} s, printing {printing:.2f} s,"
                    f" {size / 1024:.0f} KiB] target < 5 s"
                )


async def _run(url: str, args: argparse.Namespace) -> None:
    count, seconds = await _load(url, args.days)
    print(f"== {count:,} one-minute readings of one unit ({args.days} days), loaded in "
          f"{seconds:.0f} s")  # fmt: skip
    print(f"  rollup job: {await _rollups(url):.1f} s")
    await _measure(url, args.days, args.runs, args.raw)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=31)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--raw", action="store_true")
    args = parser.parse_args()
    factory = DatabaseFactory(PostgresService.default().start())
    try:
        asyncio.run(_run(factory.create("timescaledb"), args))
    finally:
        factory.drop_all()


if __name__ == "__main__":
    main()
