"""The dashboard's gateway panel shows each gateway's last batch, its clock against the
cloud's and the outbox depth its edge reports, the same figures GET /v1/gateways gives
(issue 16.2)."""

from __future__ import annotations

import asyncio
import gzip
import json
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import httpx
import psycopg
import pytest

from cloud.web.gateways_panel import gateway_rows, gateways_section
from edge.agent import SourceSpec, run_agent
from edge.clock import ManualClock
from edge.config import EdgeConfig
from edge.outbox import OutboxLimits, SqliteOutbox
from edge.uplink import Uplink, UplinkConfig
from protocols.records import Reading, Record
from tests.support.cloud_ingest import (
    app_client,
    batch_of,
    count,
    create_gateway,
    post,
    viewer_headers,
)
from tests.support.web_dashboard import Seeded, seeded_site

pytestmark = pytest.mark.integration


async def _panel(url: str) -> str:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        return gateways_section(await gateway_rows(conn))


async def test_last_batch_and_clock_skew(timescale_url: str) -> None:
    seeded: Seeded
    async with seeded_site(timescale_url, warm=False) as seeded:
        await seeded.site.rows(  # within network and batching delay
            "UPDATE gateways SET clock_sent_at = clock_received_at + interval '20 s' RETURNING 1"
        )
        html = await _panel(timescale_url)
        assert "<th>Last batch</th><th>Clock</th>" in html
        [row] = re.findall(r"<tr class=[^>]*data-gateway=[^>]*>.*?</tr>", html)
        assert re.search(r"<td class='last-batch'><time datetime=", row), row
        assert "<td class='clock'>in step</td>" in row
        await seeded.site.rows(
            "UPDATE gateways SET clock_sent_at = clock_received_at + interval '3 min 10 s'"
            " RETURNING 1"
        )
        assert "<b>3 min ahead</b>" in await _panel(timescale_url)
        await seeded.site.rows(
            "UPDATE gateways SET clock_sent_at = clock_received_at - interval '2 hours' RETURNING 1"
        )
        assert "<b>2 h 00 min behind</b>" in await _panel(timescale_url)
        await seeded.site.rows(
            "INSERT INTO gateways (gateway_id, token_hash) VALUES ('quiet-gw', 'x'::bytea)"
            " RETURNING 1"
        )
        quiet = re.search(r'data-gateway="quiet-gw".*?</tr>', await _panel(timescale_url))
        assert quiet
        assert "<td class='last-batch'>—</td><td class='clock'>—</td>" in quiet[0]


async def test_outbox_depth_from_a_real_edge_uplink(timescale_url: str, tmp_path: Path) -> None:
    """The edge's outbox and uplink report their depth in each batch; the cloud stores it and
    GET /v1/gateways and the gateway panel show it. A gateway that sends no report keeps
    working and shows none."""
    gateway = await create_gateway(timescale_url, "gw-depth")
    clock = ManualClock(datetime.now(UTC) - timedelta(hours=1))
    limits = OutboxLimits(max_records=100_000, max_bytes=1 << 28)
    outbox = await SqliteOutbox.open(tmp_path / "outbox.db", limits, clock)
    try:
        await outbox.append([_reading(clock.now(), i) for i in range(30)])
        clock.step_wall(timedelta(minutes=25))  # the backlog has waited 25 min at the gateway
        await outbox.append([_reading(clock.now(), i) for i in range(30, 40)])
        async with app_client(timescale_url) as client:
            uplink = Uplink("gw-depth", outbox, client, _config(gateway.token, 10), clock)
            assert (await uplink.send_once()).kind == "ok"
            listed = (await client.get("/v1/gateways/gw-depth", headers=await viewer_headers(
                timescale_url))).json()  # fmt: skip
        assert outbox.stats().records == 30
    finally:
        await outbox.close()
    assert listed["outbox"]["pending"] == 40  # the batch of ten included
    assert listed["outbox"]["oldest_age"] == "PT25M"
    assert listed["outbox"]["reported_at"] == listed["last_batch_at"]
    row = re.search(r'data-gateway="gw-depth".*?</tr>', await _panel(timescale_url))
    assert row
    assert (
        "<td class='outbox backlog' data-pending='40'><b>40 waiting, oldest 25 min</b></td>"
        in (row[0])
    )

    # an older gateway: its batch has no "outbox" field; stored, and the panel says nothing
    old = await create_gateway(timescale_url, "gw-old")
    async with app_client(timescale_url) as client:
        answer = await post(client, old, batch_of("gw-old", uuid4(), 1, 3))
        assert answer.status_code == 200, answer.text
        listed_old = (await client.get("/v1/gateways/gw-old", headers=await viewer_headers(
            timescale_url, "viewer-2"))).json()  # fmt: skip
    assert listed_old["outbox"] is None
    assert listed_old["last_batch_at"] is not None
    old_row = re.search(r'data-gateway="gw-old".*?</tr>', await _panel(timescale_url))
    assert old_row
    assert "<td class='outbox' title='this gateway does not report it'>—</td>" in old_row[0]


async def test_edge_leaves_the_report_out_for_a_cloud_that_refuses_it(tmp_path: Path) -> None:
    """A cloud older than the report refuses the unknown field (422 at ``outbox``): the edge
    sends the same records again without it at once, and nothing is dead-lettered."""
    seen: list[dict[str, object]] = []

    def older_cloud(request: httpx.Request) -> httpx.Response:
        body = json.loads(gzip.decompress(request.content))
        seen.append(body)
        if "outbox" in body:
            detail = [{"loc": ["outbox"], "msg": "Extra inputs are not permitted",
                       "type": "extra_forbidden"}]  # fmt: skip
            return httpx.Response(422, json={"error": "batch does not match", "detail": detail})
        last = body["records"][-1]["seq"]
        ack = {"gateway_id": body["gateway_id"], "boot_id": body["boot_id"], "stored_through": last}
        return httpx.Response(200, json=ack)

    clock = ManualClock(datetime(2026, 3, 1, 12, tzinfo=UTC))
    limits = OutboxLimits(max_records=1000, max_bytes=1 << 24)
    outbox = await SqliteOutbox.open(tmp_path / "outbox.db", limits, clock)
    try:
        await outbox.append([_reading(clock.now(), i) for i in range(5)])
        transport = httpx.MockTransport(older_cloud)
        async with httpx.AsyncClient(transport=transport) as client:
            uplink = Uplink("gw-1", outbox, client, _config("t", 100), clock)
            assert (await uplink.send_once()).kind == "outbox_report_refused"
            assert (await uplink.send_once()).kind == "ok"
            await outbox.append([_reading(clock.now(), 9)])
            assert (await uplink.send_once()).kind == "ok"
        assert outbox.stats().records == 0
    finally:
        await outbox.close()
    assert ["outbox" in body for body in seen] == [True, False, False]
    assert uplink.status.dead_lettered == 0


def _reading(at: datetime, i: int) -> Reading:
    t = at + timedelta(seconds=i)  # one reading a second: the outbox drops a repeated one
    return Reading(sensor_id="probe/t", time=t, value=4.0 + i / 100, received_at=t)


def _config(token: str, batch: int) -> UplinkConfig:
    return UplinkConfig.model_validate(
        {"cloud_url": "http://cloud", "allow_insecure_http": True, "token": token,
         "max_batch_records": batch}
    )  # fmt: skip


class _Logger:
    """A logger's backlog: its readings once, then silence (a live device with nothing new)."""

    name = "logger"

    def __init__(self, readings: list[Reading]) -> None:
        self._readings = readings

    async def __aenter__(self) -> _Logger:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    def __aiter__(self) -> AsyncIterator[tuple[Record, ...]]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[tuple[Record, ...]]:
        yield tuple(self._readings)
        await asyncio.Event().wait()


async def test_outbox_depth_from_a_running_edge_agent(timescale_url: str, tmp_path: Path) -> None:
    """The whole agent (source → outbox → uplink) against the cloud app in-process: the depth
    each batch reports reaches GET /v1/gateways and the panel."""
    gateway = await create_gateway(timescale_url, "gw-agent")
    start = datetime.now(UTC) - timedelta(hours=1)
    backlog = [_reading(start, i) for i in range(40)]
    config = EdgeConfig.model_validate(
        {
            "gateway_id": "gw-agent",
            "cloud": {"cloud_url": "http://cloud", "allow_insecure_http": True,
                      "token": gateway.token, "max_batch_records": 10, "linger": 0.01,
                      "backoff_initial": 0.05, "backoff_max": 0.5},
            "outbox": {"path": str(tmp_path / "outbox.db"), "watch_interval": 0.01},
            "health": {"port": 0},
            "supervision": {"restart_initial": 0.05, "restart_max": 0.5, "shutdown_flush": 5},
        }
    )  # fmt: skip
    stop = asyncio.Event()
    viewer = await viewer_headers(timescale_url)
    async with app_client(timescale_url) as client:
        agent = asyncio.create_task(
            run_agent(config, stop, [SourceSpec("logger", lambda: _Logger(backlog))],
                      client=client)
        )  # fmt: skip
        try:
            for _ in range(600):  # at most a minute; usually well under a second
                listed = (await client.get("/v1/gateways/gw-agent", headers=viewer)).json()
                if await count(timescale_url, "readings") == 40:
                    break
                await asyncio.sleep(0.1)
        finally:
            stop.set()
            await asyncio.wait_for(agent, 30)
        listed = (await client.get("/v1/gateways/gw-agent", headers=viewer)).json()
    assert await count(timescale_url, "readings") == 40
    async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
        cur = await conn.execute(
            "SELECT record_count FROM ingest_batches WHERE gateway_id = 'gw-agent'"
            " ORDER BY batch_id DESC LIMIT 1"
        )
        last = await cur.fetchone()
    assert last is not None
    # the last batch was sent with at least its own records waiting (ten per batch)
    pending = listed["outbox"]["pending"]
    assert pending >= last[0] >= 1
    assert listed["outbox"]["reported_at"] == listed["last_batch_at"]
    row = re.search(r'data-gateway="gw-agent".*?</tr>', await _panel(timescale_url))
    assert row
    assert f"data-pending='{pending}'>{pending} waiting, oldest" in row[0]


async def test_a_gateway_named_by_the_cli_shows_its_name(timescale_url: str) -> None:
    await create_gateway(timescale_url, "gw-7f3a")
    named = _cli("cloud", "gateway", "name", "gw-7f3a", "  Back office  gateway ", "--reason",
                 "installed by the pharmacy", "--database-url", timescale_url)  # fmt: skip
    assert named.returncode == 0, named.stderr
    assert "is named 'Back office gateway' (was unnamed)" in named.stdout
    refused = _cli("cloud", "gateway", "name", "gw-none", "X", "--database-url", timescale_url)
    assert refused.returncode == 1
    assert "no gateway 'gw-none'" in refused.stderr
    empty = _cli("cloud", "gateway", "name", "gw-7f3a", "  ", "--database-url", timescale_url)
    assert empty.returncode == 1
    assert "a gateway name has 1 to 200 characters" in empty.stderr

    async with app_client(timescale_url) as client:
        listed = (await client.get("/v1/gateways/gw-7f3a", headers=await viewer_headers(
            timescale_url))).json()  # fmt: skip
    assert listed["name"] == "Back office gateway"
    row = re.search(r'data-gateway="gw-7f3a".*?</tr>', await _panel(timescale_url))
    assert row
    assert "<td><span title='gw-7f3a'>Back office gateway</span></td>" in row[0]
    async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
        cur = await conn.execute(
            "SELECT action, reason, detail FROM audit_log WHERE subject = 'gateway:gw-7f3a'"
            " AND action = 'gateway.name'"
        )
        trail = await cur.fetchall()
    assert trail == [
        ("gateway.name", "installed by the pharmacy",
         {"before": {"name": None}, "after": {"name": "Back office gateway"}}),
    ]  # fmt: skip


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "coldtrace", *args], capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
