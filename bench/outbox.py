"""Outbox benchmark: durable commits per second, drain rate, and a 1M-record catch-up.

Each figure is printed next to a baseline measured in the same run on the same disk: raw
``sqlite3`` inserts and deletes with the same pragmas (WAL, ``synchronous=FULL``), so the cost
of the outbox's own work (serialising records, sequence bookkeeping, the worker thread) shows.

The catch-up drains a backlog of ``--backlog`` records through the real uplink (gzip JSON) into
an in-process cloud (``httpx.MockTransport``) that inflates and parses every batch, and reports
how long a record appended behind that backlog waits before it is acknowledged: the cloud
stores each gateway's stream in sequence order, so fresh data waits for the backlog.

    .venv/bin/python bench/outbox.py [--backlog 1000000] [--dir /path/on/the/gateway/disk]
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import sqlite3
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from edge.clock import SystemClock
from edge.outbox import OutboxLimits, SqliteOutbox
from edge.uplink import Uplink, UplinkConfig
from protocols.records import Reading

T0 = datetime(2026, 3, 1, tzinfo=UTC)
LIMITS = OutboxLimits(max_records=50_000_000, max_bytes=1 << 40)


def reading(i: int) -> Reading:
    t = T0 + timedelta(seconds=i)
    return Reading(
        sensor_id=f"fridge-{i % 50}/t", time=t, value=4.0 + (i % 100) / 100, received_at=t
    )


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:>12,.0f} records/s  ({n:,} in {seconds:.2f} s)"


def raw_baseline(path: Path, single: int, batches: int, batch: int) -> tuple[float, float, float]:
    """Raw sqlite3 with the outbox's pragmas: single inserts, batch inserts, delete of all."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE r (seq INTEGER PRIMARY KEY, payload TEXT)")
    body = reading(0).model_dump_json()
    seq = 0
    start = time.perf_counter()
    for _ in range(single):
        seq += 1
        conn.execute("BEGIN")
        conn.execute("INSERT INTO r VALUES (?, ?)", (seq, body))
        conn.execute("COMMIT")
    t_single = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(batches):
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO r VALUES (?, ?)", [(seq + i + 1, body) for i in range(batch)])
        seq += batch
        conn.execute("COMMIT")
    t_batch = time.perf_counter() - start
    start = time.perf_counter()
    step = 5000
    for low in range(0, seq, step):
        conn.execute(
            "SELECT seq, payload FROM r WHERE seq > ? ORDER BY seq LIMIT ?", (low, step)
        ).fetchall()
        conn.execute("BEGIN")
        conn.execute("DELETE FROM r WHERE seq <= ?", (low + step,))
        conn.execute("COMMIT")
    t_drain = time.perf_counter() - start
    conn.close()
    return t_single, t_batch, t_drain


async def outbox_figures(
    path: Path, single: int, batches: int, batch: int
) -> tuple[float, float, float]:
    async with await SqliteOutbox.open(path, LIMITS) as outbox:
        start = time.perf_counter()
        for i in range(single):
            await outbox.append([reading(i)])
        t_single = time.perf_counter() - start
        records = [[reading(b * batch + i) for i in range(batch)] for b in range(batches)]
        start = time.perf_counter()
        for chunk in records:
            await outbox.append(chunk)
        t_batch = time.perf_counter() - start
        start = time.perf_counter()
        while True:
            peeked = await outbox.peek(5000, 1 << 30)
            if not peeked.records:
                break
            await outbox.ack(peeked.boot_id, peeked.records[-1].seq)
        t_drain = time.perf_counter() - start
    return t_single, t_batch, t_drain


class ParsingCloud:
    """Inflates and parses each batch (json, not pydantic: the edge side is measured) and acks."""

    def __init__(self) -> None:
        self.records = 0
        self.acked_at: dict[int, float] = {}
        self.watch: int | None = None

    def handle(self, request: httpx.Request) -> httpx.Response:
        batch = json.loads(gzip.decompress(request.content))
        last = batch["records"][-1]["seq"]
        self.records += len(batch["records"])
        if self.watch is not None and self.watch <= last and self.watch not in self.acked_at:
            self.acked_at[self.watch] = time.perf_counter()
        ack = {
            "gateway_id": batch["gateway_id"],
            "boot_id": batch["boot_id"],
            "stored_through": last,
        }
        return httpx.Response(200, json=ack)


async def catch_up(path: Path, backlog: int) -> None:
    async with await SqliteOutbox.open(path, LIMITS) as outbox:
        start = time.perf_counter()
        step = 10_000
        for low in range(0, backlog, step):
            await outbox.append([reading(i) for i in range(low, min(backlog, low + step))])
        t_fill = time.perf_counter() - start
        print(f"  backlog appended (batches of {step:,}): {rate(backlog, t_fill)}")
        cloud = ParsingCloud()
        config = UplinkConfig.model_validate(
            {"cloud_url": "https://cloud.invalid", "token": "bench", "linger": 0.001}
        )
        async with httpx.AsyncClient(transport=httpx.MockTransport(cloud.handle)) as client:
            uplink = Uplink("gw-bench", outbox, client, config, SystemClock())
            start = time.perf_counter()
            task = asyncio.create_task(uplink.run())
            await asyncio.sleep(0.2)  # catch-up is under way when the fresh reading arrives
            fresh_at = time.perf_counter()
            cloud.watch = await outbox.append([reading(backlog)])
            await wait_empty(outbox)
            t_drain = time.perf_counter() - start
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        waited = cloud.acked_at[cloud.watch] - fresh_at
        per_batch = f"{config.max_batch_records:,}/batch"
        print(
            f"  drained through the uplink (gzip JSON, {per_batch}): {rate(cloud.records, t_drain)}"
        )
        print(f"  a fresh record appended behind the backlog was acknowledged after {waited:.1f} s")


async def wait_empty(outbox: SqliteOutbox) -> None:
    for _ in range(600_000):
        if not outbox.stats().records:
            return
        await asyncio.sleep(0.01)


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--single", type=int, default=1000, help="single-record commits")
    parser.add_argument("--batches", type=int, default=300, help="commits of 100 records")
    parser.add_argument("--backlog", type=int, default=1_000_000, help="catch-up backlog")
    parser.add_argument("--dir", type=Path, default=None, help="where the files go (default: tmp)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        folder = Path(tmp)
        print(f"outbox benchmark in {folder} (WAL, synchronous=FULL: one fsync per commit)")
        raw = raw_baseline(folder / "raw.db", args.single, args.batches, 100)
        ours = await outbox_figures(folder / "outbox.db", args.single, args.batches, 100)
        n_batch = args.batches * 100
        n_all = args.single + n_batch
        for label, count, base, mine in [
            ("durable single-record commits", args.single, raw[0], ours[0]),
            ("durable commits of 100 records", n_batch, raw[1], ours[1]),
            ("drain (peek 5,000 + ack)", n_all, raw[2], ours[2]),
        ]:
            print(f"{label}:")
            print(f"  baseline raw sqlite3 : {rate(count, base)}")
            print(f"  SqliteOutbox         : {rate(count, mine)}  ({base / mine:.0%} of baseline)")
        print(f"catch-up of a {args.backlog:,}-record backlog:")
        await catch_up(folder / "backlog.db", args.backlog)


if __name__ == "__main__":
    asyncio.run(main())
