"""Fleet scale: 1,000 gateways × 50 sensors through the real HTTP ingest and processor.

On a fresh database of the private cluster: one ``coldtrace cloud serve`` (ingest and API, no
processor) and one ``coldtrace cloud process``; ``simulators.fleet`` registers the gateways
through the admin API and drives them. Simulated time is compressed by ``--speed`` (at 10, a
simulated minute passes in 6 wall seconds, so the fleet offers 10 times its real rate: 50,000
sensors reading once a minute offer 833 readings/s really, 8,333/s at speed 10). ``--failing``
gateways have a fridge (mounted at a refrigerated location) that warms past 8 °C; a watcher polls
``GET /v1/excursions`` to time each excursion's appearance. Printed:

- sustained readings/s (acknowledged readings over the run's wall time) against the offered rate;
- p50/p95 batch acknowledgement latency;
- p95 wall time from a breach's confirmation (the acknowledgement of the reading at which the
  profile's on-delay had elapsed, ``excursions.confirmed_at``) to its excursion in the API;
- database growth per day per 1,000 sensors (bytes per stored reading, from the database's size
  before and after, times a reading a minute for a day), uncompressed;
- CPU seconds per million readings: the cloud processes and the database backends serving them.

    .venv/bin/python bench/fleet.py [--gateways 1000] [--sensors 50] [--speed 10]
                                    [--duration 30] [--failing 10] [--upload-every 300]

Each gateway uploads every ``--upload-every`` simulated seconds (5 minutes by default: 250
readings a batch); the cloud's cost is mostly per batch, so this sets what a core can carry.

Timing never fails the run; figures are printed only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import psycopg

from bench.horizontal import _listening, _processor, cpu_seconds, postgres_cpu
from bench.ingest import _serve
from cloud.auth.model import Role
from cloud.auth.service import add_user
from coldtrace.devservices import PostgresService
from simulators.fleet import FleetConfig, FleetStats, percentile, register, run_fleet
from tests.support.databases import DatabaseFactory

SITE = "fleet-site"


async def _seed(url: str, cfg: FleetConfig) -> tuple[str, str]:
    """The site, a refrigerated fridge per failing sensor with it mounted; admin and viewer
    tokens."""
    async with await psycopg.AsyncConnection.connect(url) as conn:
        await conn.execute("INSERT INTO sites (site_id, name) VALUES (%s, 'Fleet')", (SITE,))
        for g in range(cfg.failing):
            fridge = f"fleet-fridge-{g:05d}"
            await conn.execute(
                "INSERT INTO locations (location_id, site_id, kind, name, profile_id)"
                " VALUES (%s, %s, 'fridge', %s, 'std-refrigerated')",
                (fridge, SITE, fridge),
            )
            await conn.execute(
                "INSERT INTO sensors (sensor_id, location_id) VALUES (%s, %s)",
                (cfg.sensor_id(g, 0), fridge),
            )
        admin = await add_user(conn, "fleet-admin", Role.ADMIN)
        viewer = await add_user(conn, "fleet-viewer", Role.VIEWER)
        await conn.commit()
    return admin, viewer


async def _watch(base: str, viewer: str, seen: dict[str, tuple[float, datetime]]) -> None:
    """Polls the excursions API; the wall time each sensor's excursion first appears."""
    headers = {"Authorization": f"Bearer {viewer}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as client:
        while True:
            answer = await client.get("/v1/excursions", params={"limit": 1000})
            now = time.monotonic()
            if answer.status_code == 200:
                for e in answer.json():
                    if e["sensor_id"] not in seen and e.get("confirmed_at"):
                        seen[e["sensor_id"]] = (now, datetime.fromisoformat(e["confirmed_at"]))
            await asyncio.sleep(0.25)


def _breach_latencies(stats: FleetStats, seen: dict[str, tuple[float, datetime]]) -> list[float]:
    """Wall seconds from the acknowledgement of each confirming reading to the excursion."""
    out = []
    for sensor, (shown, confirmed) in seen.items():
        acks = [wall for at, wall in stats.acks.get(sensor, []) if at >= confirmed]
        if acks:
            out.append(shown - min(acks))
    return out


def _rss(pid: int) -> int:
    """Resident memory of a process, in bytes (``/proc``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


async def _size(url: str) -> tuple[int, int]:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cur = await conn.execute(
            "SELECT pg_database_size(current_database()),"
            " coalesce((SELECT hypertable_size('readings')), pg_total_relation_size('readings'))"
        )
        row = await cur.fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


async def main(args: argparse.Namespace, url: str) -> None:
    cfg = FleetConfig(
        gateways=args.gateways, sensors=args.sensors, speed=args.speed,
        upload_every=timedelta(seconds=args.upload_every),
        duration=timedelta(minutes=args.duration), failing=args.failing, site=SITE,
        start=datetime.now(UTC) - timedelta(minutes=args.duration), fail_at=timedelta(minutes=1),
    )  # fmt: skip
    admin, viewer = await _seed(url, cfg)
    database = str(psycopg.conninfo.conninfo_to_dict(url)["dbname"])
    server, base = _serve(url)
    processor = _processor(url)
    seen: dict[str, tuple[float, datetime]] = {}
    try:
        tokens = await register(cfg, base, admin, {})
        while await _listening(url) < 1:  # noqa: ASYNC110 - polls the database
            await asyncio.sleep(0.05)
        db_before, readings_before = await _size(url)
        procs = [server.pid, processor.pid]
        cpu0 = sum(cpu_seconds(p) for p in procs) + postgres_cpu(database)
        watcher = asyncio.create_task(_watch(base, viewer, seen))
        start = time.monotonic()
        stats = await run_fleet(cfg, base, tokens)
        wall = time.monotonic() - start
        deadline = time.monotonic() + 120
        while len(seen) < cfg.failing and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.25)
        watcher.cancel()
        cpu = sum(cpu_seconds(p) for p in procs) + postgres_cpu(database) - cpu0
        rss = sum(_rss(p) for p in procs)
        db_after, readings_after = await _size(url)
    finally:
        for proc in (server, processor):
            proc.terminate()
            proc.wait(timeout=30)
    _report(
        args, cfg, stats, wall, seen, cpu, (db_after - db_before, readings_after - readings_before)
    )
    print(f"cloud processes' memory (RSS)   {rss / 2**20:>12,.0f} MiB (cloud serve + processor)")


def _report(
    args: argparse.Namespace,
    cfg: FleetConfig,
    stats: FleetStats,
    wall: float,
    seen: dict[str, tuple[float, datetime]],
    cpu: float,
    growth: tuple[int, int],
) -> None:
    sensors = cfg.gateways * cfg.sensors
    offered = sensors / cfg.interval.total_seconds() * cfg.speed
    per_day = 86_400 / cfg.interval.total_seconds() * 1000  # readings/day per 1,000 sensors
    breach = _breach_latencies(stats, seen)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    every, upload = cfg.interval.total_seconds(), cfg.upload_every.total_seconds()
    print(f"fleet: {cfg.gateways} gateways × {cfg.sensors} sensors ({sensors:,}), a reading per "
          f"{every:g} s, upload every {upload:g} s, time × {cfg.speed:g} "
          f"({args.duration:g} simulated min in {wall:.1f} wall s)")  # fmt: skip
    print(f"{os.cpu_count()} CPUs, load average at the end {load}")
    print(f"readings acknowledged           {stats.acked:>12,} of {stats.offered:,} offered")
    print(
        f"sustained readings/s            {stats.acked / wall:>12,.0f} (offered {offered:,.0f}/s)"
    )
    print(f"batches, retries                {stats.batches:>12,} {stats.retries:,}")
    print(f"ack latency p50 / p95 (ms)      {percentile(stats.latencies, 50) * 1000:>12,.0f}"
          f" / {percentile(stats.latencies, 95) * 1000:,.0f}")  # fmt: skip
    print(f"breach → excursion in API p95 s {percentile(breach, 95):>12.2f}"
          f" ({len(breach)} of {cfg.failing} excursions seen)")  # fmt: skip
    db_bytes, readings_bytes = growth
    stored = max(stats.acked, 1)
    print(f"database bytes per reading      {db_bytes / stored:>12.1f} (readings table "
          f"{readings_bytes / stored:.1f})")  # fmt: skip
    print(f"database growth/day/1k sensors  {db_bytes / stored * per_day / 1e6:>12,.1f} MB "
          f"(uncompressed)")  # fmt: skip
    print(
        f"CPU s per million readings      {cpu / stored * 1e6:>12,.1f} (cloud processes and "
        "their database backends)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gateways", type=int, default=1000)
    parser.add_argument("--sensors", type=int, default=50)
    parser.add_argument("--speed", type=float, default=10.0)
    parser.add_argument("--duration", type=float, default=30.0, help="simulated minutes")
    parser.add_argument("--failing", type=int, default=10)
    parser.add_argument(
        "--upload-every", type=float, default=300.0, help="simulated seconds between uploads"
    )
    db = DatabaseFactory(PostgresService.default().start())
    try:
        arguments = parser.parse_args()
        asyncio.run(main(arguments, db.create("timescaledb")))
    finally:
        db.drop_all()
