"""Ingest throughput: HTTP → validation → database, beside a raw binary COPY (the ceiling).

Runs a real ``coldtrace cloud serve`` (ingest only) on the private cluster, sends pre-built gzip
batches from several concurrent gateways, then binary-COPYs the same number of rows straight into
the same ``readings`` hypertable in the same run, and prints both rates and their ratio. Then
the processor's rate over the stored batches: with no steps (the framework alone) and with
``default_steps()`` (whatever the cold-chain, anomaly and receiving parts registered).

    .venv/bin/python bench/ingest.py [--readings 200000] [--batch 5000] [--gateways 4]
                                     [--processes 1 2]

``--processes`` runs the ingest once per count given, each time with that many ``cloud serve``
processes (the gateways shared round-robin between them, ``--gateways`` per process) and fresh
gateways; the ratio to the ceiling is printed for each.

Timing never fails the run; figures are printed only.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import psycopg

from cloud.config import ProcessorSettings
from cloud.ingest.auth import add_gateway
from cloud.processing.processor import Processor
from cloud.processing.registry import default_steps
from cloud.processing.steps import Step
from cloud.storage.database import make_pool
from coldtrace.devservices import PostgresService, free_port
from protocols.batch import Batch, Sequenced
from protocols.records import Reading
from tests.support.databases import DatabaseFactory

# Recent enough for ingest's backlog horizon (a year) whenever the bench runs.
T0 = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=30)


def _bodies(gateway: str, boot: uuid.UUID, total: int, size: int) -> list[bytes]:
    bodies = []
    for first in range(1, total + 1, size):
        records = [
            Sequenced(seq=s, record=Reading(sensor_id=f"{gateway}/s{s % 20}",
                      time=T0 + timedelta(seconds=s), value=4.0 + (s % 7) / 10,
                      received_at=T0 + timedelta(seconds=s)))
            for s in range(first, min(first + size, total + 1))
        ]  # fmt: skip
        batch = Batch(gateway_id=gateway, boot_id=boot, sent_at=T0, records=records)
        bodies.append(gzip.compress(batch.model_dump_json().encode(), compresslevel=6))
    return bodies


async def _send(base: str, token: str, bodies: list[bytes]) -> None:
    headers = {"Authorization": f"Bearer {token}", "Content-Encoding": "gzip",
               "Content-Type": "application/json"}  # fmt: skip
    async with httpx.AsyncClient(timeout=120) as client:
        for body in bodies:
            response = await client.post(base + "/v1/batches", content=body, headers=headers)
            response.raise_for_status()


def _serve(url: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "coldtrace", "cloud", "serve", "--database-url", url, "--port",
         str(port), "--no-processor", "--no-scheduler"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120  # start-up is slow on a loaded machine
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/openapi.json", timeout=1).status_code == 200:
                return proc, base
        except httpx.TransportError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("cloud serve did not start")


async def _copy_ceiling(url: str, total: int) -> float:
    boot = uuid.uuid4()
    rows = [
        (T0 + timedelta(seconds=s), f"copy/s{s % 20}", 4.0 + (s % 7) / 10, "degC", "good",
         T0 + timedelta(seconds=s), "copy", boot, s)
        for s in range(1, total + 1)
    ]  # fmt: skip
    async with await psycopg.AsyncConnection.connect(url) as conn:
        start = time.perf_counter()
        async with (
            conn.cursor() as cur,
            cur.copy(
                "COPY readings (time, sensor_id, value, unit, quality, received_at, gateway_id,"
                " boot_id, seq) FROM STDIN (FORMAT BINARY)"
            ) as copy,
        ):
            copy.set_types(["timestamptz", "text", "float8", "text", "text", "timestamptz",
                            "text", "uuid", "int8"])  # fmt: skip
            for row in rows:
                await copy.write_row(row)
        await conn.commit()
        return time.perf_counter() - start


async def _process(url: str, steps: list[Step]) -> tuple[float, int]:
    pool = make_pool(url, max_size=2)
    async with pool:
        processor = Processor(pool, steps, ProcessorSettings(), listen_url=url)
        start = time.perf_counter()
        batches = await processor.drain()
        return time.perf_counter() - start, batches


async def _reset_processing(url: str) -> None:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute("UPDATE ingest_batches SET processed_at = NULL")
        await conn.execute("UPDATE processor_streams SET processed_through = 0")


async def _ingest(url: str, args: argparse.Namespace, processes: int) -> tuple[int, float, int]:
    """Readings sent, seconds taken and gzip bytes, through ``processes`` ingest processes."""
    gateways = args.gateways * processes
    per_gateway = args.readings // gateways
    tokens, bodies = [], []
    async with await psycopg.AsyncConnection.connect(url) as conn:
        for g in range(gateways):
            name = f"bench-p{processes}-{g}"
            tokens.append(await add_gateway(conn, name, None))
            bodies.append(_bodies(name, uuid.uuid4(), per_gateway, args.batch))
        await conn.commit()
    servers = [_serve(url) for _ in range(processes)]
    try:
        start = time.perf_counter()
        await asyncio.gather(
            *(
                _send(servers[g % processes][1], t, b)
                for g, (t, b) in enumerate(zip(tokens, bodies, strict=True))
            )
        )
        seconds = time.perf_counter() - start
    finally:
        for proc, _ in servers:
            proc.terminate()
            proc.wait(timeout=20)
    size = sum(len(b) for bs in bodies for b in bs)
    return per_gateway * gateways, seconds, size


async def main(args: argparse.Namespace, url: str) -> None:
    runs = [(p, *await _ingest(url, args, p)) for p in args.processes]
    total = runs[0][1]
    copy_s = await _copy_ceiling(url, total)
    bare_s, batches = await _process(url, [])
    await _reset_processing(url)
    steps = default_steps()
    full_s, _ = await _process(url, steps)
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
          f"on {os.cpu_count()} CPUs")  # fmt: skip
    print(f"readings: {total} per run in batches of {args.batch}, {args.gateways} gateways per "
          f"process, {runs[0][3] / total:.1f} gzip bytes per reading")  # fmt: skip
    print(f"{'path':<44}{'seconds':>10}{'readings/s':>14}{'/ ceiling':>11}")
    rows = [(f"HTTP ingest, {p} process{'es' if p > 1 else ''}", n, secs) for p, n, secs, _ in runs]
    rows += [
        ("raw binary COPY into readings (ceiling)", total, copy_s),
        (f"processor, no steps ({batches} batches)", total * len(runs), bare_s),
        (f"processor, default_steps() ({len(steps)} steps)", total * len(runs), full_s),
    ]
    ceiling = total / copy_s
    for name, n, secs in rows:
        print(f"{name:<44}{secs:>10.2f}{n / secs:>14,.0f}{n / secs / ceiling:>11.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--gateways", type=int, default=4)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    factory = DatabaseFactory(PostgresService.default().start())
    try:
        asyncio.run(main(parser.parse_args(), factory.create("timescaledb")))
    finally:
        factory.drop_all()
