"""A stalled stream shows on /healthz, the devices and streams APIs and the CLI; an admin (API or
CLI) sets the batch aside; meanwhile its sensors are "processing stalled", never "no data"."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from uuid import uuid4

import psycopg
import pytest
from psycopg import AsyncConnection
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

from cloud.auth.model import Role
from cloud.auth.service import add_user
from cloud.config import ProcessorSettings
from cloud.ingest.writer import store_batch
from cloud.jobs.stale import detect_stale
from cloud.processing.processor import Processor
from cloud.processing.steps import ProcessingBatch
from cloud.storage.database import make_pool
from cloud.web.gateways_panel import gateway_rows, gateways_section
from coldtrace.cli import main
from tests.support.cloud_ingest import T0, app_client, batch_of, count, create_gateway

pytestmark = pytest.mark.integration

QUICK = ProcessorSettings(
    retry_initial=timedelta(milliseconds=100), retry_max=timedelta(milliseconds=100), stall_after=2
)
SENSOR = "fridge-0/t"


@dataclass
class Poison:
    name: str = "poison"

    async def apply(self, conn: AsyncConnection[TupleRow], batch: ProcessingBatch) -> None:
        if batch.first_seq == 6:
            raise RuntimeError("unknown profile for fridge-0")


async def _token(url: str, name: str, role: Role) -> dict[str, str]:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        token = await add_user(conn, name, role)
        await conn.commit()
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def stalled(timescale_url: str) -> str:
    """gw-1's first batch processed (the sensor is known), its second stalls the stream."""
    await create_gateway(timescale_url)
    boot = uuid4()
    async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
        for first in (1, 6, 11):
            await store_batch(conn, batch_of("gw-1", boot, first, 5))
    pool: AsyncConnectionPool[AsyncConnection[TupleRow]] = make_pool(timescale_url, max_size=2)
    async with pool:
        processor = Processor(pool, [Poison()], QUICK, listen_url=timescale_url)
        for _ in range(30):
            await processor.drain()
            if await count(timescale_url, "processor_streams", "stalled_since IS NOT NULL"):
                break
            await asyncio.sleep(0.12)
    return timescale_url


async def test_a_stalled_stream_is_visible_and_an_admin_sets_its_batch_aside(stalled: str) -> None:
    viewer = await _token(stalled, "vera", Role.VIEWER)
    admin = await _token(stalled, "ada", Role.ADMIN)
    async with app_client(stalled) as client:
        health = (await client.get("/healthz")).json()
        assert health["status"] == "degraded"
        (stream,) = health["stalled_streams"]
        assert stream["gateway_id"] == "gw-1"
        assert stream["batch_id"] == 2
        assert "unknown profile for fridge-0" in stream["error"]

        device = (await client.get(f"/v1/devices/{SENSOR}", headers=viewer)).json()
        assert device["silence"] == "processing_stalled"
        assert "unknown profile" in device["processing_error"]
        assert device["processing_stalled_since"] is not None

        (listed,) = (await client.get("/v1/streams?stalled=true", headers=viewer)).json()
        assert (listed["failing_batch_id"], listed["processed_through"]) == (2, 5)

        url = "/v1/streams/gw-1/set-aside"
        body = {"batch_id": 2, "reason": "profile fixed later; data reviewed by QA"}
        assert (await client.post(url, json=body, headers=viewer)).status_code == 403
        wrong = await client.post(url, json={**body, "batch_id": 3}, headers=admin)
        assert wrong.status_code == 409
        assert "that is batch 2" in wrong.json()["detail"]
        assert (
            await client.post(url, json={**body, "reason": " "}, headers=admin)
        ).status_code == 422
        done = await client.post(url, json=body, headers=admin)
        assert done.status_code == 200
        assert done.json()["first_seq"] == 6
        again = await client.post(url, json=body, headers=admin)
        assert again.status_code == 409  # nothing is failing any more

        assert (await client.get("/healthz")).json()["status"] == "ok"
        device = (await client.get(f"/v1/devices/{SENSOR}", headers=viewer)).json()
        assert device["silence"] is None
    assert await count(stalled, "quarantined_batches", "set_aside_by = 'ada'") == 1
    assert await count(stalled, "audit_log", "action = 'set_aside_batch' AND actor = 'ada'") == 1


async def test_the_dashboard_gateway_panel_shows_the_stall_with_its_error(stalled: str) -> None:
    async with await psycopg.AsyncConnection.connect(stalled) as conn:
        await conn.execute("INSERT INTO gateways (gateway_id, token_hash) VALUES ('gw-<2>', '')")
        rows = await gateway_rows(conn)
    assert [(r.gateway_id, r.state) for r in rows] == [("gw-1", "stalled"), ("gw-<2>", "ok")]
    html = gateways_section(rows)
    assert "PROCESSING STALLED" in html
    assert "unknown profile for fridge-0" in html
    assert "coldtrace cloud stream skip gw-1 --batch 2" in html
    assert "gw-&lt;2&gt;" in html  # escaped


async def test_while_stalled_its_sensors_are_not_reported_silent(stalled: str) -> None:
    later = T0 + timedelta(days=1)
    async with await psycopg.AsyncConnection.connect(stalled) as conn:
        result = await detect_stale(conn, later, timedelta(minutes=15))
        assert result.opened == 0
        await conn.execute("UPDATE processor_streams SET stalled_since = NULL")
        await conn.commit()
        assert (await detect_stale(conn, later, timedelta(minutes=15))).opened == 1


async def test_the_cli_lists_the_stalled_stream_and_skips_its_batch(
    stalled: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        await asyncio.to_thread(main, ["cloud", "stream", "list", "--database-url", stalled]) == 0
    )
    listing = capsys.readouterr().out
    assert "gw-1 boot" in listing
    assert "STALLED since" in listing
    assert "batch 2 failed" in listing
    skip = ["cloud", "stream", "skip", "gw-1", "--database-url", stalled, "--reason", "bad batch"]
    assert await asyncio.to_thread(main, [*skip, "--batch", "3"]) == 1
    assert "that is batch 2" in capsys.readouterr().err
    assert await asyncio.to_thread(main, [*skip, "--batch", "2", "--actor", "ops:kim"]) == 0
    assert "set aside" in capsys.readouterr().out
    assert await count(stalled, "quarantined_batches", "set_aside_by = 'ops:kim'") == 1


def test_the_set_aside_body_refuses_what_it_cannot_store() -> None:
    from cloud.api.streams import SetAsideIn

    with pytest.raises(ValueError, match="reason"):
        SetAsideIn.model_validate({"batch_id": 1, "reason": "a\x00b"})
    with pytest.raises(ValueError, match="batch_id"):
        SetAsideIn.model_validate({"batch_id": 2**63, "reason": "x"})


async def test_an_admin_sets_the_batch_aside_from_the_admin_page(stalled: str) -> None:
    viewer = (await _token(stalled, "vera", Role.VIEWER))["Authorization"].split()[1]
    admin = (await _token(stalled, "ada", Role.ADMIN))["Authorization"].split()[1]
    action = {"X-Coldtrace-Action": "1"}
    url = "/ui/admin/api/streams/gw-1/set-aside"
    boot = (await _one(stalled, "SELECT boot_id::text FROM processor_streams"))[0]
    body = {"row": {"batch_id": "2", "boot_id": boot}, "reason": "QA reviewed the batch"}
    async with app_client(stalled) as client:
        assert (await client.post("/ui/login", data={"token": viewer})).status_code == 303
        page = (await client.get("/ui/admin/gateways")).text
        assert "STALLED" in page
        assert "unknown profile for fridge-0" in page
        assert url not in page  # read-only for other roles
        assert (await client.post(url, json=body, headers=action)).status_code == 403

        client.cookies.clear()
        assert (await client.post("/ui/login", data={"token": admin})).status_code == 303
        page = (await client.get("/ui/admin/gateways")).text
        assert f"data-url='{url}'" in page
        assert "Set batch 2 of gw-1 aside" in page
        assert (await client.post(url, json=body)).status_code == 403  # no anti-forgery header
        wrong = await client.post(url, headers=action, json={**body, "row": {"batch_id": "3"}})
        assert wrong.status_code == 409
        assert "that is batch 2" in wrong.json()["detail"]
        junk = await client.post(url, headers=action, json={**body, "row": {"batch_id": "x"}})
        assert junk.status_code == 422
        done = await client.post(url, json=body, headers=action)
        assert done.status_code == 200, done.text
        assert "seq 6..10" in done.json()["message"]
        assert (await client.post(url, json=body, headers=action)).status_code == 409
        page = (await client.get("/ui/admin/gateways")).text
        assert "STALLED" not in page
        assert url not in page  # batch 3 waits for a processor: behind, nothing to set aside
        assert "<td>behind</td>" in page
    assert await count(stalled, "quarantined_batches", "set_aside_by = 'ada'") == 1
    assert (
        await count(
            stalled,
            "audit_log",
            "action = 'set_aside_batch' AND actor = 'ada' AND reason = 'QA reviewed the batch'",
        )
        == 1
    )
    assert await count(stalled, "alerts", "kind = 'batch_set_aside'") == 1


async def _one(url: str, query: str) -> tuple[object, ...]:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        row = await (await conn.execute(query)).fetchone()
    assert row is not None
    return tuple(row)
