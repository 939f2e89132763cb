"""Helpers for ingest and processor tests: batches, gzip bodies, gateways, an in-process app."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

import httpx
import psycopg

from cloud.app import create_app
from cloud.config import CloudSettings
from cloud.ingest.auth import add_gateway
from protocols.batch import Batch, Sequenced
from protocols.records import DeviceState, DeviceStatus, Reading, Record

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Gateway:
    gateway_id: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def create_gateway(url: str, gateway_id: str = "gw-1", site: str | None = None) -> Gateway:
    """A registered gateway; without ``site`` it may write only for devices bound to no site."""
    async with await psycopg.AsyncConnection.connect(url) as conn:
        token = await add_gateway(conn, gateway_id, site)
        await conn.commit()
    return Gateway(gateway_id, token)


def reading(seq: int, sensor: str = "fridge-1/t", shift: timedelta = timedelta(0)) -> Reading:
    at = T0 + timedelta(seconds=seq) + shift
    return Reading(sensor_id=sensor, time=at, value=4.0 + (seq % 10) / 10, received_at=at)


def batch_of(
    gateway_id: str, boot: UUID, first: int, count: int, *, sensors: int = 1,
    shift: timedelta = timedelta(0),
) -> Batch:  # fmt: skip
    """``count`` readings with seq first..first+count-1, spread over ``sensors`` sensors."""
    return Batch(
        gateway_id=gateway_id,
        boot_id=boot,
        sent_at=T0,
        records=[
            Sequenced(seq=s, record=reading(s, f"fridge-{s % sensors}/t", shift))
            for s in range(first, first + count)
        ],
    )


def batch_with(gateway_id: str, boot: UUID, first: int, records: Sequence[Record]) -> Batch:
    return Batch(
        gateway_id=gateway_id,
        boot_id=boot,
        sent_at=T0,
        records=[Sequenced(seq=first + i, record=r) for i, r in enumerate(records)],
    )


def status(device_id: str, state: DeviceState, at: datetime) -> DeviceStatus:
    return DeviceStatus(device_id=device_id, device_type="sensor", state=state, time=at)


def gz(batch: Batch) -> bytes:
    return gzip.compress(batch.model_dump_json().encode())


async def post(client: httpx.AsyncClient, gateway: Gateway, batch: Batch) -> httpx.Response:
    """POSTs ``batch`` as the edge does: gzip JSON with the gateway's bearer token."""
    headers = {**gateway.headers, "Content-Encoding": "gzip", "Content-Type": "application/json"}
    return await client.post("/v1/batches", content=gz(batch), headers=headers)


@asynccontextmanager
async def app_client(url: str, **overrides: object) -> AsyncIterator[httpx.AsyncClient]:
    """The app in-process (lifespan run), processor and scheduler off unless overridden."""
    # A ten-year backlog horizon: test data carries fixed 2026 dates (see FAST_ENV).
    options: dict[str, object] = {
        "run_processor": False,
        "run_scheduler": False,
        "admission": {"backlog_horizon": timedelta(days=3650)},
        **overrides,
    }
    settings = CloudSettings.model_validate({"database_url": url, **options})
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://cloud") as client:
            yield client


async def count(url: str, table: str, where: str = "true") -> int:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cur = await conn.execute(f"SELECT count(*) FROM {table} WHERE {where}")
        row = await cur.fetchone()
        assert row is not None
        return int(row[0])


async def viewer_headers(url: str, name: str = "viewer") -> dict[str, str]:
    """A read-only user's bearer header (users and roles belong to cloud.auth)."""
    from cloud.auth.model import Role
    from cloud.auth.service import add_user

    async with await psycopg.AsyncConnection.connect(url) as conn:
        token = await add_user(conn, name, Role.VIEWER)
        await conn.commit()
    return {"Authorization": f"Bearer {token}"}
