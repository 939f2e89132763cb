"""Measured at scale: a year of readings, hypertable and plain layouts, what each job costs.

Builds ``--readings`` readings (default 2 M for ``make bench``; the issue's figure is 100 M:
``--readings 100000000``) spread over a year and ``--sensors`` sensors, generated inside the
database, in a fresh database per layout (TimescaleDB hypertable with daily chunks; plain
PostgreSQL table with BRIN), then prints, each beside its baseline measured in the same run:

- the rollup job's time per run for one minute of new readings (every sensor) — the queued
  buckets job of today against the previous job's ``stored_at`` watermark query;
- the processor's claim time with ``--streams`` idle streams and a few pending batches — the
  claim over unprocessed batches (partial index) against the previous claim query;
- index sizes per daily chunk (hypertable) or per table (plain): the unique
  ``(gateway_id, boot_id, seq, time)`` index beside the heap and the other indexes, and what
  rebuilding one batch costs with and without it;
- the read API's p95 for a year of one unit (hourly buckets, in-process app, ``--requests``):
  from the hourly rollups, beside the same request answered from raw readings.

    .venv/bin/python -m bench.scale [--readings 2000000] [--layouts hypertable,plain]

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
from psycopg.rows import TupleRow

from cloud.app import create_app
from cloud.auth.model import Role
from cloud.auth.service import add_user
from cloud.config import CloudSettings
from cloud.jobs.rollups import queue_touched, refresh_rollups
from cloud.processing.processor import CLAIM_SQL
from coldtrace.devservices import PostgresService
from protocols.batch import Sequenced
from protocols.records import Reading
from tests.support.databases import DatabaseFactory

END = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
START = END - timedelta(days=365)
GATEWAYS = 10

# The previous rollup job's first statement (before issue 23): readings stored since the last
# pass, found through the stored_at BRIN index of every chunk.
OLD_ROLLUP_SQL = """
SELECT DISTINCT sensor_id, date_bin('1 hour', time, '2000-01-01 00:00:00+00')
FROM readings WHERE stored_at > %s AND stored_at <= %s
"""
# The previous claim: every stream joined and sorted, then the first unlocked one.
OLD_CLAIM_SQL = """
SELECT c.gateway_id, c.boot_id FROM processor_streams c JOIN gateway_streams s
USING (gateway_id, boot_id)
WHERE c.processed_through < s.stored_through AND (c.retry_at IS NULL OR c.retry_at <= now())
ORDER BY s.updated_at LIMIT 1 FOR UPDATE OF c SKIP LOCKED
"""


async def _load(url: str, readings: int, sensors: int) -> float:
    """Readings generated server-side, one day per statement; returns seconds."""
    per_sensor = readings // sensors
    step = timedelta(days=365) / per_sensor
    started = time.perf_counter()
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        boots = [uuid.uuid4() for _ in range(GATEWAYS)]
        for g in range(GATEWAYS):
            await conn.execute(
                "INSERT INTO gateways (gateway_id, token_hash) VALUES (%s, %s)",
                (f"gw-{g}", uuid.uuid4().bytes),
            )
        per_gateway = sensors // GATEWAYS
        day = START
        while day < END:
            first = int((day - START) / step)
            last = min(int((day + timedelta(days=1) - START) / step), per_sensor)
            await conn.execute(
                "INSERT INTO readings (time, sensor_id, value, quality, received_at, stored_at,"
                " gateway_id, boot_id, seq)"
                " SELECT t, 'bench-' || s, 5 + 2 * sin(i / 50.0 + s), 'good', t, t,"
                "        'gw-' || (s %% %(g)s), (%(boots)s::uuid[])[s %% %(g)s + 1],"
                "        i::bigint * %(pg)s + s / %(g)s + 1"
                " FROM generate_series(%(first)s, %(last)s - 1) i,"
                "      generate_series(0, %(sensors)s - 1) s,"
                "      LATERAL (SELECT %(start)s::timestamptz + i * %(step)s::interval) AS x(t)",
                {"g": GATEWAYS, "boots": boots, "pg": per_gateway, "first": first, "last": last,
                 "sensors": sensors, "start": START, "step": step},
            )  # fmt: skip
            day += timedelta(days=1)
        for g, boot in enumerate(boots):
            await conn.execute(
                "INSERT INTO gateway_streams (gateway_id, boot_id, stored_through) VALUES (%s, %s,"
                " (SELECT max(seq) FROM readings WHERE gateway_id = %s))",
                (f"gw-{g}", boot, f"gw-{g}"),
            )
        await conn.execute(
            "INSERT INTO processor_streams (gateway_id, boot_id, processed_through)"
            " SELECT gateway_id, boot_id, stored_through FROM gateway_streams"
        )
        await conn.execute("INSERT INTO sites (site_id, name, timezone)"
                           " VALUES ('bench', 'Bench', 'Europe/Berlin')")  # fmt: skip
        await conn.execute("INSERT INTO locations (location_id, site_id, kind, name)"
                           " VALUES ('unit-0', 'bench', 'fridge', 'Unit 0')")  # fmt: skip
        await conn.execute(
            "INSERT INTO sensors (sensor_id, location_id) VALUES ('bench-0', 'unit-0')"
        )
        await conn.execute("UPDATE gateways SET site_id = 'bench'")
        await conn.execute("ANALYZE")
    return time.perf_counter() - started


async def _connect(url: str, *, autocommit: bool) -> psycopg.AsyncConnection[TupleRow]:
    """A connection set up like the service's pools (UTC, no JIT), so figures compare."""
    conn = await psycopg.AsyncConnection.connect(url, autocommit=autocommit)
    await conn.execute("SET TIME ZONE 'UTC'")
    await conn.execute("SET jit = off")
    if not autocommit:
        await conn.commit()
    return conn


async def _timed(runs: int, work: Callable[[], Awaitable[object]]) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        await work()
        times.append(time.perf_counter() - started)
    return times


def _ms(times: list[float]) -> str:
    return f"median {statistics.median(times) * 1000:8.1f} ms (n={len(times)})"


async def _rollups(url: str, sensors: int) -> None:
    """One minute of readings for every sensor, queued as ingest queues them, then one pass."""
    async with await _connect(url, autocommit=False) as conn:
        # Earlier hours of today rolled up, as a running job would have left them.
        await conn.execute(
            "INSERT INTO rollup_queue (sensor_id, hour) SELECT 'bench-' || s, h"
            " FROM generate_series(0, %s - 1) s,"
            " generate_series(%s::timestamptz - interval '24 hours', %s, interval '1 hour') h",
            (sensors, END, END),
        )
        await conn.commit()
        await refresh_rollups(conn, END, timedelta(minutes=2))
        new_times, old_times = [], []
        for minute in range(5):
            at = END + timedelta(minutes=minute)
            items = [
                Sequenced(seq=1, record=Reading(sensor_id=f"bench-{s}", time=at, value=5.0,
                                                 received_at=at))
                for s in range(sensors)
            ]  # fmt: skip
            await conn.execute(
                "INSERT INTO readings (time, sensor_id, value, quality, received_at, gateway_id,"
                " boot_id, seq) SELECT %s, 'bench-' || s, 5.0, 'good', %s, 'gw-bench',"
                " gen_random_uuid(), s FROM generate_series(0, %s - 1) s",
                (at, at, sensors),
            )
            await queue_touched(conn, items)
            await conn.commit()
            started = time.perf_counter()
            await refresh_rollups(conn, at, timedelta(minutes=2))
            new_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            cur = await conn.execute(OLD_ROLLUP_SQL, (datetime.now(UTC) - timedelta(minutes=1),
                                                      datetime.now(UTC)))  # fmt: skip
            await cur.fetchall()
            await conn.commit()
            old_times.append(time.perf_counter() - started)
    print(f"  rollup job, one minute of {sensors} sensors: queued buckets {_ms(new_times)}")
    print(f"    baseline, previous job's stored_at scan alone:      {_ms(old_times)}")


async def _claims(url: str, streams: int) -> None:
    async with await _connect(url, autocommit=True) as conn:
        await conn.execute(
            "WITH s AS (INSERT INTO gateway_streams (gateway_id, boot_id, stored_through)"
            " SELECT 'gw-' || (i %% %s), gen_random_uuid(), 100 FROM generate_series(1, %s) i"
            " RETURNING gateway_id, boot_id)"
            " INSERT INTO processor_streams (gateway_id, boot_id, processed_through)"
            " SELECT gateway_id, boot_id, 100 FROM s",
            (GATEWAYS, streams),
        )
        # Five streams are behind by one batch each.
        await conn.execute(
            "WITH b AS (SELECT gateway_id, boot_id FROM processor_streams ORDER BY random()"
            " LIMIT 5), u AS (UPDATE gateway_streams s SET stored_through = 101 FROM b"
            " WHERE s.gateway_id = b.gateway_id AND s.boot_id = b.boot_id RETURNING s.*)"
            " INSERT INTO ingest_batches (gateway_id, boot_id, first_seq, last_seq, record_count)"
            " SELECT gateway_id, boot_id, 101, 101, 1 FROM u"
        )
        await conn.execute("ANALYZE gateway_streams, processor_streams, ingest_batches")

        async def claim(sql: str) -> None:
            async with conn.transaction():
                await (await conn.execute(sql)).fetchone()
                raise psycopg.Rollback

        new = await _timed(50, lambda: claim(CLAIM_SQL))
        old = await _timed(50, lambda: claim(OLD_CLAIM_SQL))
    print(f"  processor claim, {streams} streams, 5 pending: now      {_ms(new)}")
    print(f"    baseline, previous claim query:                     {_ms(old)}")


async def _indexes(url: str, layout: str) -> None:
    async with await _connect(url, autocommit=True) as conn:
        if layout == "hypertable":
            cur = await conn.execute(
                "SELECT i.indexrelid::regclass::text, pg_relation_size(i.indexrelid),"
                " pg_relation_size(i.indrelid) FROM show_chunks('readings') c"
                " JOIN pg_index i ON i.indrelid = c"
            )
        else:
            cur = await conn.execute(
                "SELECT i.indexrelid::regclass::text, pg_relation_size(i.indexrelid),"
                " pg_relation_size(i.indrelid) FROM pg_index i"
                " WHERE i.indrelid = 'readings'::regclass"
            )
        sizes: dict[str, list[int]] = {}
        heaps: dict[str, int] = {}
        for name, size, heap in await cur.fetchall():
            kind = _kind(str(name))
            sizes.setdefault(kind, []).append(int(size))
            heaps[str(name).split("_" + kind)[0]] = int(heap)
        unit = "per daily chunk (median)" if layout == "hypertable" else "whole table"
        heap = statistics.median(heaps.values()) if heaps else 0
        print(f"  sizes {unit}: heap {heap / 2**20:.1f} MB")
        for kind, values in sorted(sizes.items()):
            print(f"    index {kind:<28} {statistics.median(values) / 2**20:8.2f} MB")
        await _rebuild_cost(conn)


def _kind(name: str) -> str:
    for kind in ("gateway_id_boot_id_seq_time", "sensor_time", "stored_at_brin", "time_brin",
                 "time_idx"):  # fmt: skip
        if kind in name:
            return kind
    return name.rsplit(".", 1)[-1]


async def _rebuild_cost(conn: psycopg.AsyncConnection[tuple[object, ...]]) -> None:
    """The processor's rebuild of one batch (500 seqs of one stream), with and without the
    unique index (dropped inside a rolled-back transaction)."""
    cur = await conn.execute(
        "SELECT gateway_id, boot_id, max(seq) FROM readings WHERE gateway_id = 'gw-1'"
        " AND time > %s - interval '1 day' GROUP BY gateway_id, boot_id",
        (END,),
    )
    row = await cur.fetchone()
    if row is None:
        return
    gateway, boot, last = row[0], row[1], int(str(row[2]))
    query = (
        "SELECT seq, sensor_id, time, value FROM readings WHERE gateway_id = %s AND boot_id = %s"
        " AND seq BETWEEN %s AND %s AND time BETWEEN %s AND %s"
    )
    params = (gateway, boot, last - 499, last, END - timedelta(days=1), END)

    async def rebuild() -> None:
        await (await conn.execute(query, params)).fetchall()

    with_index = await _timed(10, rebuild)
    async with conn.transaction():
        cur = await conn.execute(
            "SELECT conname FROM pg_constraint WHERE conrelid = 'readings'::regclass"
            " AND contype = 'u'"
        )
        name = await cur.fetchone()
        assert name is not None
        await conn.execute(f'ALTER TABLE readings DROP CONSTRAINT "{name[0]}"'.encode())
        without = await _timed(10, rebuild)
        # The alternative: a plain index on what the rebuild looks up (boot ids are unique).
        started = time.perf_counter()
        await conn.execute("CREATE INDEX readings_stream_seq ON readings (boot_id, seq)")
        built = time.perf_counter() - started
        cur = await conn.execute(
            "SELECT pg_relation_size(indexrelid) FROM pg_index"
            " WHERE indexrelid::regclass::text LIKE '%readings_stream_seq'"
        )
        alt_sizes = [int(str(r[0])) for r in await cur.fetchall()]
        alternative = await _timed(10, rebuild)
        raise psycopg.Rollback
    print(f"  rebuild of a 500-record batch with the unique index:   {_ms(with_index)}")
    print(f"    without it (readings_sensor_time / BRIN only):       {_ms(without)}")
    print(f"    with a plain (boot_id, seq) index instead:           {_ms(alternative)};"
          f" {statistics.median(alt_sizes) / 2**20:.2f} MB per index (median of"
          f" {len(alt_sizes)}), built in {built:.0f} s")  # fmt: skip


async def _read_api(url: str, requests: int) -> None:
    """The read API's year of one unit in hourly buckets: from raw readings (every hour of the
    year queued, as when the rollup job is far behind: the path it then takes), then from the
    hourly rollups once the job has rolled the year up (the path it takes normally)."""
    async with await psycopg.AsyncConnection.connect(url) as conn:
        token = await add_user(conn, "bench", Role.VIEWER)
        await conn.execute(
            "INSERT INTO rollup_queue (sensor_id, hour) SELECT 'bench-0', h"
            " FROM generate_series(%s::timestamptz, %s, interval '1 hour') h",
            (START, END - timedelta(hours=1)),
        )
        await conn.commit()
    settings = CloudSettings.model_validate(
        {"database_url": url, "run_processor": False, "run_scheduler": False}
    )
    app = create_app(settings)
    path = "/v1/locations/unit-0/readings"
    query = {"start": START.isoformat(), "end": END.isoformat(), "bucket": "PT1H"}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://cloud",
                                     headers={"Authorization": f"Bearer {token}"},
                                     timeout=120) as client:  # fmt: skip
            raw = await _requests(client, path, query, requests)
            async with await _connect(url, autocommit=False) as conn:
                started = time.perf_counter()
                await refresh_rollups(conn, END, timedelta(minutes=2))
                year = time.perf_counter() - started
            rolled = await _requests(client, path, query, requests)
    assert [f[:2] for f in rolled[0]] == [f[:2] for f in raw[0]], "rollups and raw differ"
    assert all(
        a == b or (a is not None and b is not None and abs(a - b) < 1e-9)
        for (_, _, a), (_, _, b) in zip(rolled[0], raw[0], strict=True)
    ), "the rollups' means differ from the raw readings'"
    print(f"  read API, a year of one unit in hourly buckets: {_p95(rolled[1])}")
    print(f"    baseline, the same from raw readings (job behind): {_p95(raw[1])}")
    print(f"    (rolling that sensor's year up took {year:.1f} s)")


async def _requests(
    client: httpx.AsyncClient, path: str, query: dict[str, str], n: int
) -> tuple[list[tuple[int, float | None, float | None]], list[float]]:
    first = await client.get(path, params=query)
    assert first.status_code == 200, first.text
    figures = [(b["samples"], b["min"], b["avg"]) for b in first.json()["series"][0]["buckets"]]
    return figures, await _timed(n, lambda: client.get(path, params=query))


def _p95(times: list[float]) -> str:
    p95 = statistics.quantiles(times, n=20)[-1] if len(times) >= 2 else times[0]
    return (
        f"p95 {p95 * 1000:.0f} ms, median {statistics.median(times) * 1000:.0f} ms (n={len(times)})"
    )


async def _layout(url: str, layout: str, args: argparse.Namespace) -> None:
    print(f"== {layout}: {args.readings:,} readings, {args.sensors} sensors, one year")
    seconds = await _load(url, args.readings, args.sensors)
    print(
        f"  load (server-side generate_series): {seconds:.0f} s,"
        f" {args.readings / seconds:,.0f} readings/s"
    )
    await _indexes(url, layout)
    await _rollups(url, args.sensors)
    await _read_api(url, args.requests)
    await _claims(url, args.streams)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=2_000_000)
    parser.add_argument("--sensors", type=int, default=200)
    parser.add_argument("--streams", type=int, default=200_000)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--layouts", default="hypertable,plain")
    args = parser.parse_args()
    factory = DatabaseFactory(PostgresService.default().start())
    try:
        for layout in args.layouts.split(","):
            url = factory.create("timescaledb" if layout == "hypertable" else "postgresql")
            asyncio.run(_layout(url, layout, args))
    finally:
        factory.drop_all()


if __name__ == "__main__":
    main()
