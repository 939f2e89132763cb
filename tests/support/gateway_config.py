"""A cloud with master data, a registered gateway and an admin, for gateway-configuration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import httpx
import psycopg

from cloud.auth.model import Role
from cloud.auth.service import add_user
from cloud.config import ProcessorSettings
from cloud.processing.processor import Processor
from cloud.processing.registry import default_steps
from cloud.storage.database import make_pool
from protocols.records import Reading, Record, TagRead
from tests.support.cloud_ingest import Gateway, app_client, batch_with, create_gateway, post
from tests.support.ledger_seed import seed

WHY = {"X-Coldtrace-Reason": "commissioning"}
REPORTED_AT = datetime(2026, 2, 1, 8, 0, tzinfo=UTC)


@dataclass
class Commissioning:
    client: httpx.AsyncClient
    gateway: Gateway
    admin: dict[str, str]
    viewer: dict[str, str]
    url: str

    async def put(self, path: str, body: dict[str, Any]) -> httpx.Response:
        response = await self.client.put(path, json=body, headers=self.admin | WHY)
        assert response.status_code in {200, 201}, response.text
        return response

    async def source(self, name: str, kind: str, **settings: Any) -> None:
        body = {"kind": kind, "settings": settings}
        await self.put(f"/v1/gateways/{self.gateway.gateway_id}/sources/{name}", body)

    async def point(self, source: str, sensor: str, address: str, **payload: Any) -> None:
        gw = self.gateway.gateway_id
        body = {"address": address, "payload": payload}
        await self.put(f"/v1/gateways/{gw}/sources/{source}/points/{sensor}", body)

    async def mount(self, sensor: str, location: str) -> None:
        body = {"location_id": location, "mounted_at": "2026-01-01T00:00:00Z"}
        await self.put(f"/v1/sensors/{sensor}", body)


@asynccontextmanager
async def commissioning(url: str, gateway_id: str = "gw-1") -> AsyncIterator[Commissioning]:
    """Site ``site-1`` with fridges ``fridge-1`` and ``fridge-2`` (2-8 °C), gateway ``gw-1``."""
    async with await psycopg.AsyncConnection.connect(url) as conn:
        await seed(conn)
        admin = await add_user(conn, "admin-1", Role.ADMIN)
        viewer = await add_user(conn, "viewer-1", Role.VIEWER)
        await conn.commit()
    gateway = await create_gateway(url, gateway_id, "site-1")
    async with app_client(url) as client:
        yield Commissioning(
            client,
            gateway,
            {"Authorization": f"Bearer {admin}"},
            {"Authorization": f"Bearer {viewer}"},
            url,
        )


async def report(site: Commissioning) -> None:
    """The gateway sends a reading of probe-9 and a tag read of reader-9; the processor runs."""
    at, later = REPORTED_AT, REPORTED_AT + timedelta(seconds=1)
    records: list[Record] = [
        Reading(sensor_id="probe-9", time=at, value=5.0, received_at=at),
        TagRead(reader_id="reader-9", antenna=1, epc="3034257bf7194e4000001a85", first_seen=at,
                last_seen=later, received_at=later),
    ]  # fmt: skip
    sent = await post(site.client, site.gateway, batch_with("gw-1", uuid4(), 1, records))
    assert sent.status_code == 200, sent.text
    pool = make_pool(site.url, max_size=2)
    async with pool:
        await Processor(pool, default_steps(), ProcessorSettings(), listen_url=site.url).drain()
