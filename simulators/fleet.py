"""A fleet of simulated gateways driving the cloud's real HTTP ingest (``coldtrace sim fleet``).

Each gateway has ``sensors`` loggers that read every ``interval`` (a minute by default, like
pharmacy fridge loggers), a few of them beside a door that opens now and then (a warm spike that
decays over minutes), and uploads what it has every ``upload_every``, as the edge uplink does:
contiguous sequence numbers per boot, gzip JSON in the batch contract, records kept until
acknowledged, a 409 answered by resending from the sequence the cloud names, 5xx and network
errors retried with jittered backoff. ``failing`` sensors (the first sensor of the first
``failing`` gateways) warm from ``fail_at`` on until they breach 8 °C: the cold-chain excursions
a fleet bench times.

Time is simulated and compressed: ``speed`` simulated seconds pass per wall second, and every
reading is stamped with simulated time starting at ``start``. At speed 60 one wall second holds a
simulated minute, so a fleet's day of readings arrives in 24 wall minutes.

Gateways are registered through the admin API (``POST /v1/gateways``, an admin token), their
tokens kept in a JSON file so a second run reuses them; a gateway registered before whose token
is not in the file gets a new one (``POST /v1/gateways/{id}/token``).
"""

from __future__ import annotations

import asyncio
import gzip
import json
import math
import os
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import msgspec

_ENCODER = msgspec.json.Encoder()


@dataclass(frozen=True)
class FleetConfig:
    """What the fleet looks like and how fast its simulated time runs."""

    gateways: int
    sensors: int
    interval: timedelta = timedelta(minutes=1)
    upload_every: timedelta = timedelta(minutes=1)
    doors: int = 2
    """Sensors per gateway that sit beside a door."""
    door_every: timedelta = timedelta(minutes=20)
    """Mean time between openings of each door."""
    speed: float = 60.0
    duration: timedelta = timedelta(minutes=30)
    start: datetime = field(default_factory=lambda: datetime.now(UTC) - timedelta(days=1))
    failing: int = 0
    fail_at: timedelta = timedelta(minutes=5)
    prefix: str = "fleet"
    site: str | None = None
    seed: int = 0

    def gateway_id(self, g: int) -> str:
        return f"{self.prefix}-gw-{g:05d}"

    def sensor_id(self, g: int, s: int) -> str:
        return f"{self.prefix}-gw-{g:05d}/t{s:03d}"


@dataclass
class FleetStats:
    """What the fleet sent and how the cloud answered."""

    offered: int = 0
    acked: int = 0
    batches: int = 0
    retries: int = 0
    refused: int = 0
    latencies: list[float] = field(default_factory=list)
    """Wall seconds from sending a batch to its acknowledgement."""
    acks: dict[str, list[tuple[datetime, float]]] = field(default_factory=dict)
    """For each failing sensor: (reading time, wall clock of its acknowledgement)."""


class FleetError(Exception):
    """The fleet cannot run (registration refused, the cloud refuses its batches)."""


@dataclass
class _Sensor:
    sensor_id: str
    setpoint: float
    door: bool
    fails: bool
    warm_until: float = 0.0  # sim seconds: the door's warm spike lasts until then

    def value(self, t: float, rng: random.Random, cfg: FleetConfig) -> float:
        v = self.setpoint + 0.3 * math.sin(t / 1800.0) + rng.gauss(0.0, 0.05)
        if self.door:
            if t > self.warm_until and rng.random() < cfg.interval / cfg.door_every:
                self.warm_until = t + 300.0
            if t <= self.warm_until:
                v += 2.5 * (self.warm_until - t) / 300.0
        fail_at = cfg.fail_at.total_seconds()
        if self.fails and t >= fail_at:
            v += min(8.0, (t - fail_at) / 60.0)  # a compressor failing: +1 °C a minute
        return round(v, 2)


class _Gateway:
    """One gateway's outbox and uplink."""

    def __init__(self, g: int, cfg: FleetConfig, token: str, stats: FleetStats) -> None:
        self.gateway_id = cfg.gateway_id(g)
        self.cfg, self.stats = cfg, stats
        self.headers = {"Authorization": f"Bearer {token}", "Content-Encoding": "gzip",
                        "Content-Type": "application/json"}  # fmt: skip
        self.rng = random.Random(cfg.seed * 1_000_003 + g)  # noqa: S311 - noise, not secrets
        self.boot = str(uuid.uuid4())
        self.sensors = [
            _Sensor(cfg.sensor_id(g, s), self.rng.uniform(4.0, 6.0), s < cfg.doors,
                    fails=g < cfg.failing and s == 0)
            for s in range(cfg.sensors)
        ]  # fmt: skip
        self.phase = [self.rng.uniform(0, cfg.interval.total_seconds()) for _ in self.sensors]
        self.pending: list[tuple[int, dict[str, object]]] = []
        self.next_seq = 1
        self.read_until = 0.0

    def read(self, until: float) -> None:
        """Every sensor's readings from the last read up to ``until`` simulated seconds."""
        step = self.cfg.interval.total_seconds()
        for sensor, phase in zip(self.sensors, self.phase, strict=True):
            k = math.ceil((self.read_until - phase) / step)
            t = phase + max(k, 0) * step
            while t < until:
                if t >= self.read_until:
                    at = _stamp(self.cfg.start + timedelta(seconds=t))
                    value = sensor.value(t, self.rng, self.cfg)
                    record = {"kind": "reading", "sensor_id": sensor.sensor_id, "time": at,
                              "value": value, "received_at": at}  # fmt: skip
                    self.pending.append((self.next_seq, record))
                    self.next_seq += 1
                    self.stats.offered += 1
                t += step
        self.read_until = until

    async def upload(self, client: httpx.AsyncClient, base_url: str, sim_now: datetime) -> None:
        """Sends everything pending until it is acknowledged (batches of at most 5,000)."""
        delay = 0.2
        while self.pending:
            part = self.pending[:5000]
            body = {"gateway_id": self.gateway_id, "boot_id": self.boot,
                    "sent_at": _stamp(sim_now),
                    "records": [{"seq": s, "record": r} for s, r in part]}  # fmt: skip
            sent = time.monotonic()
            try:
                answer = await client.post(
                    base_url + "/v1/batches",
                    content=gzip.compress(_ENCODER.encode(body), compresslevel=1),
                    headers=self.headers,
                )
            except httpx.TransportError:
                answer = None
            if answer is None or answer.status_code >= 500:
                self.stats.retries += 1
                await asyncio.sleep(delay * self.rng.uniform(0.5, 1.5))
                delay = min(delay * 2, 10.0)
                continue
            if answer.status_code == 200:
                self.stats.latencies.append(time.monotonic() - sent)
                self.stats.batches += 1
                self._acked(int(answer.json()["stored_through"]))
            elif answer.status_code == 409:
                self._acked(int(answer.json()["detail"][0]["expected_seq"]) - 1)
            else:
                self.stats.refused += 1
                raise FleetError(f"{self.gateway_id}: {answer.status_code} {answer.text[:300]}")

    def _acked(self, through: int) -> None:
        now = time.monotonic()
        done = [(s, r) for s, r in self.pending if s <= through]
        self.pending = self.pending[len(done) :]
        self.stats.acked += len(done)
        for _, record in done:
            sensor = str(record["sensor_id"])
            if sensor in self.stats.acks:
                self.stats.acks[sensor].append((datetime.fromisoformat(str(record["time"])), now))


def _stamp(t: datetime) -> str:
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def run_fleet(
    cfg: FleetConfig,
    base_url: str,
    tokens: dict[str, str],
    *,
    client: httpx.AsyncClient | None = None,
    progress: Callable[[FleetStats, float], None] | None = None,
) -> FleetStats:
    """Runs the fleet for ``cfg.duration`` of simulated time; returns what happened."""
    stats = FleetStats()
    gateways = [_Gateway(g, cfg, tokens[cfg.gateway_id(g)], stats) for g in range(cfg.gateways)]
    for g in gateways:
        for sensor in g.sensors:
            if sensor.fails:
                stats.acks[sensor.sensor_id] = []
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    own = client is None
    http = client or httpx.AsyncClient(timeout=60, limits=limits)
    try:
        await _drive(
            cfg, gateways=gateways, http=http, base_url=base_url, stats=stats, progress=progress
        )
    finally:
        if own:
            await http.aclose()
    return stats


async def _drive(
    cfg: FleetConfig,
    *,
    gateways: list[_Gateway],
    http: httpx.AsyncClient,
    base_url: str,
    stats: FleetStats,
    progress: Callable[[FleetStats, float], None] | None,
) -> None:
    """Each gateway uploads every ``upload_every``; their turns are spread over that period."""
    period = cfg.upload_every.total_seconds()
    end = cfg.duration.total_seconds()
    wall0 = time.monotonic()

    async def gateway_loop(g: _Gateway, offset: float) -> None:
        t = offset
        while t <= end:
            wait = wall0 + t / cfg.speed - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            g.read(min(t, end))
            await g.upload(http, base_url, cfg.start + timedelta(seconds=t))
            if t == end:
                return
            t = min(t + period, end)

    async def report() -> None:
        while progress is not None:
            await asyncio.sleep(5)
            progress(stats, time.monotonic() - wall0)

    reporter = asyncio.create_task(report())
    try:
        async with asyncio.TaskGroup() as tg:
            for i, g in enumerate(gateways):
                tg.create_task(gateway_loop(g, period * i / len(gateways)))
    finally:
        reporter.cancel()


def load_tokens(path: Path | None) -> dict[str, str]:
    """Gateway tokens kept by an earlier run (none when there is no file)."""
    if path is None or not path.exists():
        return {}
    loaded = json.loads(path.read_text())
    if not isinstance(loaded, dict):
        raise FleetError(f"{path} does not hold a JSON object of gateway tokens")
    return {str(k): str(v) for k, v in loaded.items()}


def save_tokens(path: Path, tokens: dict[str, str]) -> None:
    # Tokens are secrets: the file is created readable by its owner only.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(tokens, out, indent=0)


async def register(
    cfg: FleetConfig, base_url: str, admin_token: str, known: dict[str, str]
) -> dict[str, str]:
    """Every gateway's token: from ``known`` when there, else registered (or, for a gateway
    registered before, rotated) through the admin API."""
    tokens = dict(known)
    headers = {"Authorization": f"Bearer {admin_token}",
               "X-Coldtrace-Reason": "fleet simulation"}  # fmt: skip
    wanted = [cfg.gateway_id(g) for g in range(cfg.gateways) if cfg.gateway_id(g) not in tokens]
    async with httpx.AsyncClient(base_url=base_url, timeout=60, headers=headers) as client:
        gate = asyncio.Semaphore(8)

        async def one(gateway_id: str) -> None:
            async with gate:
                answer = await client.post(
                    "/v1/gateways", json={"gateway_id": gateway_id, "site_id": cfg.site}
                )
                if answer.status_code == 409:
                    answer = await client.post(f"/v1/gateways/{gateway_id}/token")
                if answer.status_code not in (200, 201):
                    raise FleetError(
                        f"registering {gateway_id}: {answer.status_code} {answer.text[:300]}"
                    )
                tokens[gateway_id] = str(answer.json()["token"])

        async with asyncio.TaskGroup() as tg:
            for gateway_id in wanted:
                tg.create_task(one(gateway_id))
    return tokens


def percentile(values: list[float], p: float) -> float:
    """The ``p``-th percentile by nearest rank (nan when empty).

    >>> percentile([1.0, 2.0, 3.0, 4.0], 95)
    4.0
    """
    if not values:
        return math.nan
    ranked = sorted(values)
    return ranked[min(len(ranked) - 1, math.ceil(p / 100 * len(ranked)) - 1)]
