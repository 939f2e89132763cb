"""A week-long cloud outage on a busy gateway, compressed in time: what the outbox costs the flash.

Simulates ``--days`` of outage (default 7) on a gateway with ``--rate`` readings a second
(default 50: one OPC-UA publish of 50 values a second, one commit each) and ``--doors`` dock
doors (a pallet of 40 tagged cases every 10 minutes at each: 40 tag reads and a passage),
against an outbox with the agent's default limits (5,000,000 records, 2 GiB on disk, de-dup
window of a day; ``--max-records`` to change the first). Time is a manual clock: a simulated
second costs what its commit costs, not a second. When the outbox is full the sources pause
(back-pressure: the agent does not resume them until the cloud acknowledges), so the rest of
the outage commits nothing; the simulation then lets the clock run to the end of the outage.

It prints:

- bytes written to disk per day of the outage (``wchar`` of ``/proc/self/io``: every byte
  handed to ``write``, WAL frames and checkpoints alike; fsync adds no bytes), while filling
  and averaged over the whole outage, and the write amplification (bytes written / bytes of
  record JSON);
- the peak outbox size on disk, and the peak memory (RSS) of the process;
- the time to drain the backlog afterwards through the real uplink (gzip JSON) into an
  in-process cloud that parses every batch.

For comparison it runs the previous layout for the first ``--baseline-hours`` (default 3; 0
skips it) and compares both over those hours: raw ``sqlite3``, de-dup keys in
``seen_readings(key PRIMARY KEY, seen_at)`` pruned every minute by ``seen_at`` inside the
append transaction, plus a ``meta.last_seq`` update per append.

The outbox lives in ``--dir`` (default: a temporary folder under /dev/shm when it exists, so
fsyncs cost nothing; bytes written are the same on any disk). With the defaults the run takes
several minutes and needs about 2 GiB in that folder.

    .venv/bin/python bench/edge_outage.py [--days 7] [--rate 50] [--doors 2] [--dir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import hashlib
import json
import math
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from edge.clock import ManualClock, SystemClock
from edge.outbox import OutboxFullError, OutboxLimits, OverflowPolicy, SqliteOutbox
from edge.uplink import Uplink, UplinkConfig
from protocols.records import PortalPassage, Reading, Record, TagRead

T0 = datetime(2026, 3, 1, tzinfo=UTC)
DAY = 86_400
PALLET_EVERY = 600
CASES = 40


def wchar() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    raise RuntimeError("no wchar in /proc/self/io")


def rss_peak_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def disk_size(path: Path) -> int:
    return sum(p.stat().st_size for p in (path, path.with_name(path.name + "-wal")) if p.exists())


def commits(seconds: int, rate: int, doors: int) -> Iterator[tuple[int, tuple[Record, ...]]]:
    """(second, tuple) of the simulated site, in time order."""
    for s in range(seconds):
        t = T0 + timedelta(seconds=s)
        received = t + timedelta(milliseconds=300)
        yield s, tuple(
            Reading(sensor_id=f"fridge-{k}/t", time=t, value=4.0 + ((s + k) % 40) / 10,
                    received_at=received)
            for k in range(rate)
        )  # fmt: skip
        for door in range(doors):
            if (s + door * 7) % PALLET_EVERY == 0:
                epcs = [
                    f"30340242201d8c40{s % 65536:04x}{door % 16:x}{c:03x}" for c in range(CASES)
                ]
                reads = tuple(
                    TagRead(reader_id=f"dock-reader-{door}", antenna=1 + c % 2, epc=epc,
                            rssi=-55.0, first_seen=t, last_seen=t, count=3, received_at=received)
                    for c, epc in enumerate(epcs)
                )  # fmt: skip
                yield s, reads
                yield s, (
                    PortalPassage(passage_id=f"p-{door}-{s}", door_id=f"dock-{door}",
                                  reader_id=f"dock-reader-{door}", direction="in",
                                  started_at=t, ended_at=t, epcs=tuple(epcs)),
                )  # fmt: skip


async def outage(
    path: Path, seconds: int, rate: int, doors: int, limits: OutboxLimits, mark: int
) -> dict[str, float]:
    """Commits the site's tuples until the outage ends or the outbox is full (overflow
    ``raise`` stands for the paused sources); ``mark``: the second to note bytes written at."""
    clock = ManualClock(T0)
    limits = replace(limits, overflow=OverflowPolicy.RAISE)
    payload = peak = 0
    at_mark: dict[str, float] = {}
    full_at: float = float("nan")
    async with await SqliteOutbox.open(path, limits, clock) as outbox:
        before = wchar()
        started = time.perf_counter()
        last = -1
        for second, records in commits(seconds, rate, doors):
            if second != last:
                clock.advance(second - last if last >= 0 else 0)
                last = second
                if second % 600 == 0:
                    peak = max(peak, disk_size(path))
                if second == mark:
                    at_mark = {"written": wchar() - before, "payload": payload}
            try:
                await outbox.append(records)
            except OutboxFullError:
                full_at = second  # the sources pause: nothing more is committed
                break
            payload += sum(len(r.model_dump_json()) for r in records)
        filled = wchar() - before
        clock.advance(seconds - last)  # the rest of the outage, sources paused
        written = wchar() - before
        took = time.perf_counter() - started
        peak = max(peak, disk_size(path))
        stats = outbox.stats()
    return {"written": written, "filled": filled, "payload": payload, "peak": peak,
            "records": stats.records, "disk": stats.disk_bytes, "took": took,
            "full_at": full_at, "mark_written": at_mark.get("written", float("nan")),
            "mark_payload": at_mark.get("payload", float("nan"))}  # fmt: skip


def baseline(
    path: Path, seconds: int, rate: int, doors: int, window: timedelta
) -> dict[str, float]:
    """The previous layout, raw sqlite3, same pragmas and the same tuples."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.executescript(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "INSERT INTO meta VALUES ('last_seq', '0');"
        "CREATE TABLE records (seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, payload TEXT NOT NULL,"
        " size INTEGER NOT NULL, appended_at REAL NOT NULL);"
        "CREATE TABLE seen_readings (key BLOB PRIMARY KEY, seen_at REAL NOT NULL) WITHOUT ROWID;"
    )
    seq, pruned_at, peak = 0, 0.0, 0
    before = wchar()
    started = time.perf_counter()
    for second, records in commits(seconds, rate, doors):
        now = T0.timestamp() + second
        conn.execute("BEGIN IMMEDIATE")
        rows = []
        for r in records:
            body = r.model_dump_json()
            if isinstance(r, Reading):
                key = hashlib.sha256(f"{r.sensor_id}|{r.time.isoformat()}|{r.value!r}".encode())
                conn.execute("INSERT OR IGNORE INTO seen_readings VALUES (?, ?)",
                             (key.digest(), now))  # fmt: skip
            seq += 1
            rows.append((seq, r.kind, body, len(body), now))
        conn.executemany("INSERT INTO records VALUES (?,?,?,?,?)", rows)
        conn.execute("UPDATE meta SET value = ? WHERE key = 'last_seq'", (str(seq),))
        if now - pruned_at > 60:
            conn.execute("DELETE FROM seen_readings WHERE seen_at < ?",
                         (now - window.total_seconds(),))  # fmt: skip
            pruned_at = now
        conn.execute("COMMIT")
        if second % 600 == 0:
            peak = max(peak, disk_size(path))
    written = wchar() - before
    took = time.perf_counter() - started
    conn.close()
    return {"written": written, "peak": max(peak, disk_size(path)), "took": took}


class ParsingCloud:
    def __init__(self) -> None:
        self.records = 0

    def handle(self, request: httpx.Request) -> httpx.Response:
        batch = json.loads(gzip.decompress(request.content))
        self.records += len(batch["records"])
        ack = {"gateway_id": batch["gateway_id"], "boot_id": batch["boot_id"],
               "stored_through": batch["records"][-1]["seq"]}  # fmt: skip
        return httpx.Response(200, json=ack)


async def drain(path: Path) -> tuple[int, float]:
    limits = OutboxLimits(max_records=50_000_000, max_bytes=1 << 40)
    async with await SqliteOutbox.open(path, limits) as outbox:
        cloud = ParsingCloud()
        config = UplinkConfig.model_validate(
            {"cloud_url": "https://cloud.invalid", "token": "bench", "linger": 0.001}
        )
        async with httpx.AsyncClient(transport=httpx.MockTransport(cloud.handle)) as client:
            uplink = Uplink("gw-bench", outbox, client, config, SystemClock())
            started = time.perf_counter()
            emptied = await uplink.drain(time.monotonic() + 3600)
            took = time.perf_counter() - started
        assert emptied
    return cloud.records, took


def mib(n: float) -> str:
    return f"{n / 1024**2:,.1f} MiB"


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--rate", type=int, default=50)
    parser.add_argument("--doors", type=int, default=2)
    parser.add_argument("--max-records", type=int, default=OutboxLimits().max_records)
    parser.add_argument("--baseline-hours", type=float, default=3.0)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    shm = "/dev/shm"
    base = args.dir or (Path(shm) if await asyncio.to_thread(Path(shm).is_dir) else None)
    seconds = int(args.days * DAY)
    limits = OutboxLimits(max_records=args.max_records)
    mark = int(args.baseline_hours * 3600)
    with tempfile.TemporaryDirectory(dir=base) as tmp:
        folder = Path(tmp)
        print(f"outage of {args.days:g} days simulated: {args.rate} readings/s, {args.doors} "
              f"doors (a pallet of {CASES} every {PALLET_EVERY // 60} min each); outbox bounds "
              f"{limits.max_records:,} records, {mib(limits.max_bytes)}, de-dup window "
              f"{limits.dedupe_window}; in {folder}")  # fmt: skip
        new = await outage(folder / "outbox.db", seconds, args.rate, args.doors, limits, mark)
        rss = rss_peak_mib()
        full = not math.isnan(new["full_at"])
        full_h = new["full_at"] / 3600
        filling_days = (new["full_at"] if full else seconds) / DAY
        when = (
            f"outbox full after {full_h:.1f} h, sources paused for the remaining "
            f"{args.days * 24 - full_h:.1f} h"
            if full
            else "never full"
        )
        committed = f"{new['records']:,} ({mib(new['payload'])} of record JSON)"
        print(f"records committed: {committed}; {when}")
        print("bytes written to disk:")
        print(f"  while filling: {mib(new['filled'] / filling_days)}/day, write amplification "
              f"{new['filled'] / new['payload']:.1f}x")  # fmt: skip
        print(f"  over the whole outage: {mib(new['written'])} in all, "
              f"{mib(new['written'] / args.days)}/day on average")  # fmt: skip
        print(f"peak outbox size on disk: {mib(new['peak'])} (its own count: "
              f"{mib(new['disk'])} in use)")  # fmt: skip
        print(f"peak memory (RSS) of the process through the outage: {rss:,.0f} MiB")
        print(f"simulation took {new['took']:.1f} s")
        if mark and not math.isnan(new["mark_written"]):
            old = baseline(folder / "baseline.db", mark, args.rate, args.doors,
                           limits.dedupe_window)  # fmt: skip
            per_day = DAY / mark
            print(f"the first {args.baseline_hours:g} h against the previous layout "
                  f"(per day at that pace):")  # fmt: skip
            print(f"  baseline (previous layout): {mib(old['written'] * per_day)}/day, "
                  f"write amplification {old['written'] / new['mark_payload']:.1f}x, "
                  f"{mib(old['peak'])} on disk")  # fmt: skip
            amplification = new["mark_written"] / new["mark_payload"]
            print(f"  SqliteOutbox              : {mib(new['mark_written'] * per_day)}/day, "
                  f"write amplification {amplification:.1f}x")  # fmt: skip
        drained, took = await drain(folder / "outbox.db")
        print(f"drain afterwards through the uplink: {drained:,} records in {took:.1f} s "
              f"({drained / took:,.0f} records/s)")  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
