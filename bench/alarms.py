"""Alarm latency: from an excursion's confirmation to the e-mail accepted by the SMTP server.

Each trial is a pharmacy fridge of the thermal simulator (``simulators/thermal.py``) with the
``power-cut`` scenario, read every minute and judged by ``std-refrigerated`` (on-delay 15 min).
Its readings go through the real ingest writer: history in one batch, then one batch per
reading for the 20 minutes before the confirming one (as a gateway sends them live), then the
confirming reading alone, and nothing more until the e-mail arrives. The real processor
(cold-chain step, woken by NOTIFY) opens the excursion, and the alarm worker routes it through a
one-step policy to an e-mail channel (Apprise ``mailto://``) on an aiosmtpd server in this
process.

Latency = the SMTP server accepting the message's DATA, minus the commit of the batch holding
the reading at which the on-delay elapsed (found by the pure rules, checked against
``excursions.confirmed_at``): it includes processing, routing, rendering and SMTP. Baseline in
the same run: the same worker without its NOTIFY listener, woken only by polling
(``poll_interval`` 2 s, the default).

With the simulators running: while the trials run, ``--background`` more fridges of the thermal
simulator (each its own unit and logger, at the same site, behind a second gateway, in a process
of their own) send one reading each per ``--period`` seconds of wall time (a minute of simulated
time) through the same ingest and processor, so the confirming batch waits its turn behind a
site's live traffic (default 100 loggers every second: the traffic of some 6,000 loggers reading
once a minute). A trial whose e-mail has not arrived after a minute is counted as missing.

Run: ``.venv/bin/python -m bench.alarms [--trials 20] [--background 200] [--period 1]``.
Target p95 < 5 s. Never fails on time.
"""

from __future__ import annotations

import argparse
import asyncio
import email
import multiprocessing
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.header import decode_header, make_header
from typing import Any
from uuid import uuid4

import psycopg
from aiosmtpd.smtp import SMTP, Envelope, Session

from cloud.alarms.channels import AppriseNotifier
from cloud.alarms.config_store import put_channel, put_doc
from cloud.alarms.policy import Contact, Policy, Step, Target
from cloud.alarms.settings import AlarmSettings
from cloud.alarms.worker import AlarmWorker
from cloud.coldchain.excursions import SensorState, run
from cloud.coldchain.profiles import STANDARD_PROFILES
from cloud.coldchain.step import ColdChainStep
from cloud.config import ProcessorSettings
from cloud.ingest.auth import add_gateway
from cloud.ingest.writer import store_batch
from cloud.processing.processor import Processor
from cloud.storage.database import make_pool
from coldtrace.devservices import PostgresService
from protocols.batch import Batch, Sequenced
from protocols.records import Reading
from simulators.scenarios import ScenarioPlayer, named
from simulators.thermal import StorageUnitModel, UnitProfile, preset
from tests.support.databases import DatabaseFactory

SITE = "bench-site"
GATEWAY = "bench-gw"
FRIDGE = STANDARD_PROFILES["std-refrigerated"]


class Sink:
    """Keeps the moment each message was accepted, by the unit named in its subject."""

    def __init__(self) -> None:
        self.accepted: dict[str, float] = {}

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        at = time.perf_counter()
        content = envelope.content
        assert isinstance(content, bytes)
        raw = email.message_from_bytes(content)["Subject"]
        subject = str(make_header(decode_header(str(raw))))
        unit = subject.rsplit("— ", 1)[-1].split(" ", maxsplit=1)[0]
        self.accepted.setdefault(unit, at)
        return "250 OK"


def fridge_readings(sensor: str, unit_id: str, seed: int, start: datetime) -> list[Reading]:
    unit = StorageUnitModel(preset(UnitProfile.REFRIGERATOR), seed=seed, start=start)
    unit.advance(timedelta(hours=2))
    t0 = unit.time
    player = ScenarioPlayer(named("power-cut", unit_id), {unit_id: unit}, start=t0)
    out: list[Reading] = []
    t = t0
    while t < t0 + timedelta(hours=6):
        t += timedelta(minutes=1)
        player.advance_to(t)
        unit.advance_to(t)
        sample = unit.read_sensor()
        if sample is not None:
            out.append(Reading(sensor_id=sensor, time=sample.time, value=sample.value,
                               received_at=sample.time))  # fmt: skip
    return out


class Gateway:
    def __init__(self, url: str, gateway_id: str = GATEWAY) -> None:
        self.url = url
        self.gateway_id = gateway_id
        self.boot = uuid4()
        self.seq = 1

    async def send(self, conn: psycopg.AsyncConnection[object], readings: list[Reading]) -> None:
        batch = Batch(gateway_id=self.gateway_id, boot_id=self.boot,
                      sent_at=readings[-1].received_at,
                      records=[Sequenced(seq=self.seq + i, record=r)
                               for i, r in enumerate(readings)])  # fmt: skip
        self.seq += len(readings)
        await store_batch(conn, batch)  # type: ignore[arg-type]


BACKGROUND_GATEWAY = "bench-bg"


async def setup(url: str, smtp_port: int, trials: int, background: int) -> None:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        await conn.execute("INSERT INTO sites (site_id, name) VALUES (%s, 'Bench')", (SITE,))
        names = [f"bench-fridge-{i}" for i in range(trials)]
        names += [f"bg-fridge-{i}" for i in range(background)]
        for loc in names:
            await conn.execute(
                "INSERT INTO locations (location_id, site_id, kind, name, profile_id)"
                " VALUES (%s, %s, 'fridge', %s, 'std-refrigerated')",
                (loc, SITE, loc),
            )
            await conn.execute("INSERT INTO sensors (sensor_id, location_id) VALUES (%s, %s)",
                               (f"{loc}/t", loc))  # fmt: skip
        await add_gateway(conn, GATEWAY, SITE)
        await add_gateway(conn, BACKGROUND_GATEWAY, SITE)
        mail = f"mailto://127.0.0.1:{smtp_port}?from=coldtrace@example.org&to=qa@example.org"
        await put_channel(conn, SITE, "qa-mail", url=mail, enabled=True, actor="bench")
        await put_doc(conn, SITE, "contact", "qa", Contact(display_name="QA", channels=["qa-mail"]),
                      actor="bench")  # fmt: skip
        policy = Policy(steps=[Step(notify=[Target(type="contact", name="qa")])],
                        kinds=["excursion_opened"])  # fmt: skip
        await put_doc(conn, SITE, "policy", "bench", policy, actor="bench")
        await conn.commit()


def confirmation(readings: list[Reading]) -> int:
    """Index of the reading at which the first excursion is confirmed (the pure rules)."""
    samples = [(r.time, r.value) for r in readings if r.value is not None]
    _, events = run(FRIDGE, SensorState(), samples)
    opened = next(e for e in events if e.action == "open")
    return next(k for k, r in enumerate(readings) if r.time == opened.at)


async def run_trial(
    i: int, url: str, gateway: Gateway, sink: Sink, start: datetime
) -> float | None:
    """Sends history, then live readings up to the confirming one; waits for the e-mail."""
    loc = f"bench-fridge-{i}"
    readings = fridge_readings(f"{loc}/t", loc, seed=100 + i, start=start)
    confirm = confirmation(readings)
    live_from = max(1, confirm - 20)
    async with await psycopg.AsyncConnection.connect(url) as conn:
        await gateway.send(conn, readings[:live_from])
        for r in readings[live_from:confirm]:
            await gateway.send(conn, [r])
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.5)  # the processor is level with the live data
        await gateway.send(conn, [readings[confirm]])
        committed = time.perf_counter()
        for _ in range(1200):  # a minute: a slow trial is measured, not dropped
            if loc in sink.accepted:
                break
            await asyncio.sleep(0.05)
        cur = await conn.execute(
            "SELECT min(confirmed_at) FROM excursions WHERE sensor_id = %s", (f"{loc}/t",)
        )
        row = await cur.fetchone()
    if loc not in sink.accepted or row is None or row[0] != readings[confirm].time:
        return None
    return sink.accepted[loc] - committed


async def background_load(
    url: str, count: int, period: float, start: datetime, stop: Callable[[], bool]
) -> int:
    """The site's other loggers (thermal simulator, healthy fridges) until ``stop()``: one
    batch of one reading per logger every ``period`` s, a simulated minute apart. Returns the
    readings sent."""
    units = [StorageUnitModel(preset(UnitProfile.REFRIGERATOR), seed=1000 + i, start=start)
             for i in range(count)]  # fmt: skip
    gateway = Gateway(url, BACKGROUND_GATEWAY)
    sent = 0
    t = start
    async with await psycopg.AsyncConnection.connect(url) as conn:
        while not stop():
            began = time.perf_counter()
            t += timedelta(minutes=1)
            readings = []
            for i, unit in enumerate(units):
                unit.advance_to(t)
                sample = unit.read_sensor()
                if sample is not None:
                    readings.append(Reading(
                        sensor_id=f"bg-fridge-{i}/t", time=sample.time, value=sample.value,
                        received_at=sample.time))  # fmt: skip
            if readings:
                await gateway.send(conn, readings)
                sent += len(readings)
            await asyncio.sleep(max(0.0, period - (time.perf_counter() - began)))
    return sent


def _background_process(
    url: str, count: int, period: float, start: str, stop: Any, sent: Any
) -> None:
    """The simulators' own process (as on a real site), so their CPU does not stall the
    measuring loop (the SMTP server's clock, the processor, the worker)."""
    at = datetime.fromisoformat(start)
    sent.value = asyncio.run(background_load(url, count, period, at, stop.is_set))


async def measure(
    url: str, trials: int, listen: bool, background: int, period: float
) -> tuple[list[float], int]:
    """Latencies of the trials, and the background readings sent meanwhile."""
    sink = Sink()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(sink), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    await setup(url, port, trials, background)
    settings = AlarmSettings()
    pool = make_pool(url, max_size=6)
    stop = asyncio.Event()
    latencies: list[float] = []
    async with pool:
        processor = Processor(pool, [ColdChainStep()], ProcessorSettings(), listen_url=url)
        worker = AlarmWorker(pool, AppriseNotifier(settings.send_timeout), settings)
        async with asyncio.TaskGroup() as group:
            group.create_task(processor.run(stop))
            group.create_task(worker.run(stop, url if listen else None))
            start = datetime(2026, 7, 1, tzinfo=UTC)
            spawn = multiprocessing.get_context("spawn")
            halt, sent = spawn.Event(), spawn.Value("q", 0)
            since = (start - timedelta(days=60)).isoformat()
            load = spawn.Process(target=_background_process,
                                 args=(url, background, period, since, halt, sent))  # fmt: skip
            if background:
                load.start()
                await asyncio.sleep(5 * period)  # the background traffic is flowing
            gateway = Gateway(url)
            for i in range(trials):
                got = await run_trial(i, url, gateway, sink, start + timedelta(days=i))
                if got is not None:
                    latencies.append(got)
            halt.set()
            if background:
                await asyncio.to_thread(load.join)
            stop.set()
    server.close()
    return latencies, int(sent.value)


def report(name: str, values: list[float], trials: int) -> None:
    if not values:
        print(f"{name:<34} no e-mail arrived in {trials} trials")
        return
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    print(f"{name:<34} n={len(values):>3}/{trials}  p50 {statistics.median(values):6.3f} s"
          f"  p95 {p95:6.3f} s  max {ordered[-1]:6.3f} s")  # fmt: skip


async def main(trials: int, urls: tuple[str, str], background: int, period: float) -> None:
    notified, sent = await measure(urls[0], trials, True, background, period)
    polled, sent_polled = await measure(urls[1], trials, False, background, period)
    print("excursion confirmed -> e-mail accepted by SMTP (target p95 < 5 s)")
    print(f"background: {background} simulated loggers, a reading each every {period:g} s"
          f" ({sent} and {sent_polled} readings sent during the two runs)")  # fmt: skip
    report("worker woken by NOTIFY (default)", notified, trials)
    report("baseline: polling every 2 s only", polled, trials)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--background", type=int, default=100)
    parser.add_argument("--period", type=float, default=1.0)
    args = parser.parse_args()
    factory = DatabaseFactory(PostgresService.default().start())
    try:
        databases = (factory.create("timescaledb"), factory.create("timescaledb"))
        asyncio.run(main(args.trials, databases, args.background, args.period))
    finally:
        factory.drop_all()
