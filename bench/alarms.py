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

Run: ``.venv/bin/python -m bench.alarms [--trials 20]``. Target p95 < 5 s. Never fails on time.
"""

from __future__ import annotations

import argparse
import asyncio
import email
import statistics
import time
from datetime import UTC, datetime, timedelta
from email.header import decode_header, make_header
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
    def __init__(self, url: str) -> None:
        self.url = url
        self.boot = uuid4()
        self.seq = 1

    async def send(self, conn: psycopg.AsyncConnection[object], readings: list[Reading]) -> None:
        batch = Batch(gateway_id=GATEWAY, boot_id=self.boot, sent_at=readings[-1].received_at,
                      records=[Sequenced(seq=self.seq + i, record=r)
                               for i, r in enumerate(readings)])  # fmt: skip
        self.seq += len(readings)
        await store_batch(conn, batch)  # type: ignore[arg-type]


async def setup(url: str, smtp_port: int, trials: int) -> None:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        await conn.execute("INSERT INTO sites (site_id, name) VALUES (%s, 'Bench')", (SITE,))
        for i in range(trials):
            loc = f"bench-fridge-{i}"
            await conn.execute(
                "INSERT INTO locations (location_id, site_id, kind, name, profile_id)"
                " VALUES (%s, %s, 'fridge', %s, 'std-refrigerated')",
                (loc, SITE, loc),
            )
            await conn.execute("INSERT INTO sensors (sensor_id, location_id) VALUES (%s, %s)",
                               (f"{loc}/t", loc))  # fmt: skip
        await add_gateway(conn, GATEWAY, SITE)
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
        for _ in range(300):
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


async def measure(url: str, trials: int, listen: bool) -> list[float]:
    sink = Sink()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(sink), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    await setup(url, port, trials)
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
            gateway = Gateway(url)
            start = datetime(2026, 7, 1, tzinfo=UTC)
            for i in range(trials):
                got = await run_trial(i, url, gateway, sink, start + timedelta(days=i))
                if got is not None:
                    latencies.append(got)
            stop.set()
    server.close()
    return latencies


def report(name: str, values: list[float], trials: int) -> None:
    if not values:
        print(f"{name:<34} no e-mail arrived in {trials} trials")
        return
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    print(f"{name:<34} n={len(values):>3}/{trials}  p50 {statistics.median(values):6.3f} s"
          f"  p95 {p95:6.3f} s  max {ordered[-1]:6.3f} s")  # fmt: skip


async def main(trials: int, urls: tuple[str, str]) -> None:
    notified = await measure(urls[0], trials, listen=True)
    polled = await measure(urls[1], trials, listen=False)
    print("excursion confirmed -> e-mail accepted by SMTP (target p95 < 5 s)")
    report("worker woken by NOTIFY (default)", notified, trials)
    report("baseline: polling every 2 s only", polled, trials)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    factory = DatabaseFactory(PostgresService.default().start())
    try:
        databases = (factory.create("timescaledb"), factory.create("timescaledb"))
        asyncio.run(main(parser.parse_args().trials, databases))
    finally:
        factory.drop_all()
