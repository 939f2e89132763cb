"""Horizontal cloud: throughput with 1, 2 and 4 API processes and as many processors.

For each count N, on a fresh database of the private cluster: N ``coldtrace cloud serve``
processes (ingest only) and N ``coldtrace cloud process`` processors (default steps) run at
once; ``--gateways`` simulated gateways send pre-built gzip batches of readings, spread
round-robin over the API processes. Printed per N: the ingest rate (until every batch is
acknowledged), the end-to-end rate (until the processors have applied every batch), and the CPU
seconds the cloud processes and PostgreSQL used per million readings.

    .venv/bin/python bench/horizontal.py [--counts 1 2 4] [--readings 120000] [--batch 1000]
                                         [--gateways 16]

The processes share one machine with PostgreSQL and the senders: on 2 cores, more processes
mostly add contention; the figures say how much. Timing never fails the run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg

from bench.ingest import _bodies, _send, _serve
from cloud.ingest.auth import add_gateway
from cloud.ingest.writer import NOTIFY_CHANNEL
from coldtrace.devservices import PostgresService
from tests.support.databases import DatabaseFactory

_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process and its waited-for children (``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(v) for v in fields[11:15]) / _TICK


def postgres_cpu(database: str) -> float:
    """CPU of the live PostgreSQL backends connected to ``database`` (by process title; the
    cluster is shared, so other databases' work is left out, and so are backends that ended)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if not title.startswith("postgres:") or f" {database} " not in title:
                continue
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(v) for v in stat[11:13]) / _TICK
    return total


async def _processed(url: str, streams: int) -> bool:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cur = await conn.execute(
            "SELECT count(*) FROM gateway_streams g JOIN processor_streams p"
            " USING (gateway_id, boot_id) WHERE p.processed_through = g.stored_through"
        )
        row = await cur.fetchone()
    assert row is not None
    return int(row[0]) == streams


def _alive(processors: list[subprocess.Popen[bytes]]) -> None:
    dead = [p.returncode for p in processors if p.poll() is not None]
    if dead:
        raise SystemExit(f"a processor exited (status {dead}); its error is above")


async def _listening(url: str) -> int:
    """How many processors are up: each holds a connection that has LISTENed for ingest."""
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cur = await conn.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND query = %s",
            (f"LISTEN {NOTIFY_CHANNEL}",),
        )
        row = await cur.fetchone()
    assert row is not None
    return int(row[0])


def _processor(url: str) -> subprocess.Popen[bytes]:
    """A processor whose errors go to this process's stderr (a processor that dies is seen)."""
    return subprocess.Popen(
        [sys.executable, "-m", "coldtrace", "cloud", "process", "--database-url", url],
        stdout=subprocess.DEVNULL,
        env={**os.environ, "COLDTRACE_CLOUD_PROCESSOR__POLL_INTERVAL": "PT0.2S"},
    )  # fmt: skip


async def run(url: str, n: int, args: argparse.Namespace) -> tuple[int, float, float, float]:
    """Readings, ingest seconds, end-to-end seconds and CPU seconds with ``n`` of each."""
    per_gateway = args.readings // args.gateways
    tokens, bodies = [], []
    async with await psycopg.AsyncConnection.connect(url) as conn:
        for g in range(args.gateways):
            tokens.append(await add_gateway(conn, f"hz-{g}", None))
            bodies.append(_bodies(f"hz-{g}", uuid.uuid4(), per_gateway, args.batch))
        await conn.commit()
    database = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
    assert isinstance(database, str)
    servers = [_serve(url) for _ in range(n)]
    processors = [_processor(url) for _ in range(n)]
    procs = [p for p, _ in servers] + processors
    while await _listening(url) < n:
        _alive(processors)
        await asyncio.sleep(0.05)  # timing starts when every processor is ready
    cpu_before = sum(cpu_seconds(p.pid) for p in procs)
    pg_before = postgres_cpu(database)
    try:
        start = time.perf_counter()
        await asyncio.gather(
            *(
                _send(servers[g % n][1], t, b)
                for g, (t, b) in enumerate(zip(tokens, bodies, strict=True))
            )
        )
        ingest_s = time.perf_counter() - start
        while not await _processed(url, args.gateways):
            _alive(processors)
            await asyncio.sleep(0.05)
        total_s = time.perf_counter() - start
        cpu = sum(cpu_seconds(p.pid) for p in procs) - cpu_before
        cpu += postgres_cpu(database) - pg_before
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=30)
    return per_gateway * args.gateways, ingest_s, total_s, cpu


async def main(args: argparse.Namespace, urls: list[str]) -> None:
    results = [(n, *await run(url, n, args)) for n, url in zip(args.counts, urls, strict=True)]
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"{os.cpu_count()} CPUs, load average at the end {load}; {args.gateways} gateways, "
          f"batches of {args.batch} readings")  # fmt: skip
    print(f"{'API + processors':<18}{'readings':>10}{'ingest/s':>12}{'end-to-end/s':>14}"
          f"{'vs 1':>7}{'CPU s per 1M':>14}")  # fmt: skip
    base = results[0][1] / results[0][3]
    for n, readings, ingest_s, total_s, cpu in results:
        rate = readings / total_s
        print(f"{f'{n} + {n}':<18}{readings:>10,}{readings / ingest_s:>12,.0f}{rate:>14,.0f}"
              f"{rate / base:>7.2f}{cpu / readings * 1e6:>14,.1f}")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--readings", type=int, default=120_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--gateways", type=int, default=16)
    arguments = parser.parse_args()
    db = DatabaseFactory(PostgresService.default().start())
    try:
        # A fresh database per count, made before the event loop (the factory runs its own).
        asyncio.run(main(arguments, [db.create("timescaledb") for _ in arguments.counts]))
    finally:
        db.drop_all()
