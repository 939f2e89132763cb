"""The unit history chart's data: a year of one-minute readings of one unit, per range.

Loads ``--days`` (default 365) of one-minute readings of one sensor into a fresh TimescaleDB
database (hypertable, daily chunks), runs the rollup job (hourly and daily rollups), then times
the dashboard's ``GET /ui/history`` (in-process app, signed-in session) for a year (daily
rollups), 30 days (hourly rollups) and 24 hours (raw readings), each printed beside the
baseline measured in the same run: the readings API bucketing the raw readings of the same
range at the same width (``GET /v1/locations/{id}/readings?bucket=…``), what the chart would
cost without rollups.

    .venv/bin/python -m bench.unit_history [--days 365] [--requests 10]

Timing never fails the run; figures are printed only.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import psycopg

from cloud.app import create_app
from cloud.auth.model import Role
from cloud.auth.service import add_user
from cloud.config import CloudSettings
from cloud.jobs.rollups import refresh_rollups
from coldtrace.devservices import PostgresService
from tests.support.databases import DatabaseFactory

END = datetime.now(UTC).replace(second=0, microsecond=0)


async def _load(url: str, days: int) -> tuple[int, float]:
    """One-minute readings of sensor u-1/t, generated in the database one day per statement."""
    started = time.perf_counter()
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(
            "INSERT INTO sites (site_id, name, timezone) VALUES ('s', 'Bench', 'Europe/Paris')"
        )
        await conn.execute(
            "INSERT INTO storage_profiles (profile_id, name, action_low, action_high, alert_low,"
            " alert_high) VALUES ('cold', '2-8', 2, 8, 3, 7)"
        )
        await conn.execute(
            "INSERT INTO locations (location_id, site_id, kind, name, profile_id)"
            " VALUES ('u-1', 's', 'fridge', 'Fridge 1', 'cold')"
        )
        await conn.execute("INSERT INTO sensors (sensor_id, location_id) VALUES ('u-1/t', 'u-1')")
        await conn.execute(
            "INSERT INTO gateways (gateway_id, site_id, token_hash) VALUES ('gw', 's', %s)",
            (uuid.uuid4().bytes,),
        )
        boot = uuid.uuid4()
        for day in range(days, 0, -1):
            lo = END - timedelta(days=day)
            await conn.execute(
                "INSERT INTO readings (time, sensor_id, value, quality, received_at, gateway_id,"
                " boot_id, seq)"
                " SELECT t, 'u-1/t', 5 + 1.5 * sin(extract(epoch FROM t) / 3600.0), 'good', t,"
                "        'gw', %s, %s + n"
                " FROM generate_series(%s::timestamptz, %s::timestamptz - interval '1 minute',"
                "                      interval '1 minute') WITH ORDINALITY AS g(t, n)",
                (boot, (days - day) * 1440, lo, lo + timedelta(days=1)),
            )
        await conn.execute(
            "INSERT INTO rollup_queue (sensor_id, hour) SELECT DISTINCT sensor_id,"
            " date_bin('1 hour', time, '2000-01-01 00:00:00+00') FROM readings"
        )
        cur = await conn.execute("SELECT count(*) FROM readings")
        row = await cur.fetchone()
        await conn.execute("ANALYZE")
    assert row is not None
    return int(row[0]), time.perf_counter() - started


async def _rollups(url: str) -> float:
    started = time.perf_counter()
    async with await psycopg.AsyncConnection.connect(url) as conn:
        await conn.execute("SET jit = off")
        await refresh_rollups(conn, datetime.now(UTC), timedelta(0))
    return time.perf_counter() - started


async def _timed(runs: int, work: Callable[[], Awaitable[httpx.Response]]) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        answer = await work()
        times.append(time.perf_counter() - started)
        assert answer.status_code == 200, answer.text
    return times


def _ms(times: list[float]) -> str:
    return f"median {statistics.median(times) * 1000:6.0f} ms, max {max(times) * 1000:6.0f} ms"


async def _measure(url: str, requests: int) -> None:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        token = await add_user(conn, "bench", Role.VIEWER)
        await conn.commit()
    settings = CloudSettings.model_validate(
        {"database_url": url, "run_processor": False, "run_scheduler": False}
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://cloud",
                                     timeout=300) as client:  # fmt: skip
            login = await client.post("/ui/login", data={"token": token})
            assert login.status_code == 303, login.text
            for label, span, bucket in (("a year", timedelta(days=365), "P1D"),
                                        ("30 days", timedelta(days=30), "PT1H"),
                                        ("24 hours", timedelta(hours=24), None)):  # fmt: skip
                rng = {"start": (END - span).isoformat(), "end": END.isoformat()}

                def chart(rng: dict[str, str] = rng) -> Awaitable[httpx.Response]:
                    return client.get("/ui/history", params={"location": "u-1", **rng})

                def api(
                    rng: dict[str, str] = rng, bucket: str | None = bucket
                ) -> Awaitable[httpx.Response]:
                    params = rng if bucket is None else {**rng, "bucket": bucket}
                    return client.get(
                        "/v1/locations/u-1/readings", params=params,
                        headers={"Authorization": f"Bearer {token}"},
                    )  # fmt: skip

                first = await chart()
                body = first.json()
                points = sum(len(s["time"]) for s in body["series"])
                await api()  # warm
                ours = await _timed(requests, chart)
                base = await _timed(requests, api)
                print(
                    f"  {label:8}: chart ({body['resolution']:6}, {points:5} points,"
                    f" {len(first.content) / 1024:5.0f} KiB) {_ms(ours)}   baseline, readings"
                    f" API from raw ({bucket or 'raw'}): {_ms(base)}"
                )


async def _run(url: str, args: argparse.Namespace) -> None:
    count, seconds = await _load(url, args.days)
    print(f"== {count:,} one-minute readings of one unit ({args.days} days), loaded in "
          f"{seconds:.0f} s")  # fmt: skip
    print(f"  rollup job (hourly + daily, Europe/Paris days): {await _rollups(url):.1f} s")
    await _measure(url, args.requests)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--requests", type=int, default=10)
    args = parser.parse_args()
    factory = DatabaseFactory(PostgresService.default().start())
    try:
        asyncio.run(_run(factory.create("timescaledb"), args))
    finally:
        factory.drop_all()


if __name__ == "__main__":
    main()
