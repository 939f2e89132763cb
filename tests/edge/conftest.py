"""Edge fixtures: outboxes (every implementation of the port), clocks, records, a fake cloud."""

from __future__ import annotations

import gzip
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import httpx
import pytest

from edge.alarms import LocalAlarmConfig, LocalAlarms
from edge.clock import ManualClock
from edge.outbox import Outbox, OutboxLimits, SqliteOutbox
from edge.uplink import Uplink, UplinkConfig
from protocols.batch import Batch, BatchAck, Sequenced
from protocols.records import Reading, Record
from simulators.opcua_server import generate_certificate

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

OutboxFactory = Callable[[OutboxLimits], Awaitable[Outbox]]


def reading(i: int, sensor: str = "fridge-1/t", value: float = 4.0) -> Reading:
    """A reading whose value encodes ``i``, so tests can check order and identity."""
    t = T0 + timedelta(seconds=i)
    return Reading(sensor_id=sensor, time=t, value=value + i / 1e6, received_at=t)


@pytest.fixture
def manual_clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture(params=["sqlite"])
async def outbox_factory(
    request: pytest.FixtureRequest, tmp_path: Path, manual_clock: ManualClock
) -> AsyncIterator[OutboxFactory]:
    """Opens outboxes of one implementation (the contract suite runs once per implementation)."""
    opened: list[Outbox] = []

    async def make(limits: OutboxLimits) -> Outbox:
        assert request.param == "sqlite"
        outbox = await SqliteOutbox.open(
            tmp_path / f"outbox-{len(opened)}.db", limits, manual_clock
        )
        opened.append(outbox)
        return outbox

    yield make
    for outbox in opened:
        await outbox.close()


TOKEN = "test-gateway-token"


class FakeCloud:
    """``POST /v1/batches`` as the cloud ingest answers it, behind ``httpx.MockTransport``.

    It keeps the per-(gateway, boot) high-water mark: records at or below it are skipped, a
    batch that does not continue it gets 409. ``script`` holds answers forced on the next
    requests; ``refuse`` marks records the cloud refuses with 422 (naming them when ``pinpoint``).
    """

    def __init__(self, clock: ManualClock | None = None) -> None:
        self.clock = clock
        self.stored: list[Sequenced] = []
        self.stored_through: dict[tuple[str, UUID], int] = {}
        self.requests: list[httpx.Request] = []
        self.script: list[Callable[[httpx.Request], httpx.Response]] = []
        self.refuse: Callable[[Record], bool] = lambda _: False
        self.pinpoint = True
        self.down_until: float | None = None
        self.ack_limit: int | None = None
        """Store at most this many records per batch (a partial acknowledgement)."""

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self.handle))

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self._is_down():
            raise httpx.ConnectError("connection refused", request=request)
        if self.script:
            return self.script.pop(0)(request)
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return httpx.Response(401, json={"error": "unauthenticated: unknown gateway token"})
        assert request.headers["content-encoding"] == "gzip"
        batch = Batch.model_validate_json(gzip.decompress(request.content))
        return self._store(batch)

    def _is_down(self) -> bool:
        if self.clock is None or self.down_until is None:
            return False
        return self.clock.monotonic() < self.down_until

    def _store(self, batch: Batch) -> httpx.Response:
        refused = [
            {"loc": ["records", i, "record", "value"], "msg": "refused by test"}
            for i, item in enumerate(batch.records)
            if self.refuse(item.record)
        ]
        if refused:
            named = refused if self.pinpoint else None
            return httpx.Response(422, json={"error": "invalid_batch: test", "detail": named})
        key = (batch.gateway_id, batch.boot_id)
        through = self.stored_through.get(key, 0)
        fresh = [item for item in batch.records if item.seq > through]
        if fresh and fresh[0].seq != through + 1:
            detail: list[dict[str, object]] = [
                {"expected_seq": through + 1, "first_seq": fresh[0].seq}
            ]
            return httpx.Response(409, json={"error": "sequence_gap", "detail": detail})
        if self.ack_limit is not None:
            fresh = fresh[: self.ack_limit]
        self.stored.extend(fresh)
        if fresh:
            self.stored_through[key] = fresh[-1].seq
        ack = BatchAck(
            gateway_id=batch.gateway_id,
            boot_id=batch.boot_id,
            stored_through=self.stored_through.get(key, 0),
        )
        return httpx.Response(200, json=ack.model_dump(mode="json"))

    def seqs(self) -> list[int]:
        return [item.seq for item in self.stored]


@pytest.fixture
def fake_cloud(manual_clock: ManualClock) -> FakeCloud:
    return FakeCloud(manual_clock)


BIG = OutboxLimits(max_records=1_000_000, max_bytes=1 << 30)


def uplink_config(**changes: object) -> UplinkConfig:
    """The uplink tests' config: https test cloud, batches of 5, backoff 1 s to 60 s, no
    heartbeats."""
    base: dict[str, object] = {
        "cloud_url": "https://cloud.example/",
        "token": TOKEN,
        "max_batch_records": 5,
        "backoff_initial": timedelta(seconds=1),
        "backoff_max": timedelta(seconds=60),
        # off unless a test turns it on: on the manual clock its sleeps would move time along
        "heartbeat_interval": None,
    }
    return UplinkConfig.model_validate(base | changes)


async def make_uplink(
    outbox_factory: OutboxFactory,
    cloud: FakeCloud,
    clock: ManualClock,
    n: int = 12,
    **changes: object,
) -> tuple[Outbox, Uplink, LocalAlarms]:
    """An outbox holding readings 1..n, local alarms, and an uplink to ``cloud`` (seeded jitter)."""
    outbox = await outbox_factory(BIG)
    if n:
        await outbox.append([reading(i) for i in range(1, n + 1)])
    alarms = LocalAlarms("gw-1", LocalAlarmConfig(), clock, lambda _sensor: timedelta(0))
    uplink = Uplink(
        "gw-1",
        outbox,
        cloud.client(),
        uplink_config(**changes),
        clock,
        alarms=alarms,
        rng=random.Random(7),
    )
    return outbox, uplink, alarms


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """OPC-UA server and client (edge) certificates and keys as PEM files, one set a module."""
    folder = tmp_path_factory.mktemp("pki")
    files: dict[str, Path] = {}
    for role, uri in (("server", "urn:coldtrace:test:server"), ("client", "urn:coldtrace:edge")):
        cert, key = generate_certificate(uri, f"coldtrace {role}")
        files[f"{role}_cert"] = folder / f"{role}.pem"
        files[f"{role}_key"] = folder / f"{role}-key.pem"
        files[f"{role}_cert"].write_bytes(cert)
        files[f"{role}_key"].write_bytes(key)
    return files
