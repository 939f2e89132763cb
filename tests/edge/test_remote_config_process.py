"""``coldtrace edge run`` as a process with ``remote_config`` against ``coldtrace cloud serve``
as a process: the agent takes its configuration from the cloud, reports it, follows a change,
and reads the in-process asyncua server its configuration names."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, Any

import psycopg
import pytest
import yaml

from tests.support.cloud_processes import serve
from tests.support.gateway_config import Commissioning, commissioning
from tests.support.opcua_servers import UaTestServer, running_server
from tests.support.temperature_sources import TEST_NAMESPACE

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
async def server() -> AsyncIterator[UaTestServer]:
    async with running_server() as test_server:
        yield test_server


def write_config(tmp_path: Path, cloud_url: str, token: str) -> Path:
    config = {
        "gateway_id": "gw-1",
        "cloud": {"cloud_url": cloud_url, "allow_insecure_http": True, "token": token,
                  "linger": 0.1},
        "outbox": {"path": str(tmp_path / "outbox.db")},
        "health": {"enabled": False},
        "supervision": {"stop_grace": 2, "shutdown_flush": 1},
        "remote_config": {"poll_interval": 0.2, "cache_path": str(tmp_path / "config.json")},
    }  # fmt: skip
    path = tmp_path / "edge.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def start(config: Path, log: IO[bytes]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "coldtrace", "edge", "run", "--config", str(config)],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip


async def status(site: Commissioning) -> dict[str, Any]:
    shown = await site.client.get("/v1/gateways/gw-1/config", headers=site.admin)
    assert shown.status_code == 200, shown.text
    body: dict[str, Any] = shown.json()
    return body


async def until(site: Commissioning, key: str, value: object, seconds: float = 60) -> None:
    for _ in range(int(seconds / 0.2)):
        if (await status(site))[key] == value:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{key} never became {value!r}: {await status(site)}")


async def readings(url: str, sensor: str) -> int:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cur = await conn.execute("SELECT count(*) FROM readings WHERE sensor_id = %s", (sensor,))
        row = await cur.fetchone()
    return int(row[0]) if row else 0


async def test_the_agent_process_runs_the_configuration_the_cloud_process_serves(
    timescale_url: str, server: UaTestServer, tmp_path: Path
) -> None:
    async with commissioning(timescale_url) as site:
        await site.source("plc", "opcua", endpoint=server.endpoint, history_read=False)
        await site.mount("fridge-1.t", "fridge-1")
        await site.point("plc", "fridge-1.t", f"nsu={TEST_NAMESPACE};s=fridge-a.Temperature")
        with serve(timescale_url) as cloud:
            config = write_config(tmp_path, cloud.base_url, site.gateway.token)
            log = (tmp_path / "edge.log").open("wb")
            agent = start(config, log)
            try:
                await until(site, "applied_version", 1)
                for _ in range(300):  # the OPC-UA value, through outbox, uplink and ingest
                    if await readings(timescale_url, "fridge-1.t") > 0:
                        break
                    await asyncio.sleep(0.2)
                assert await readings(timescale_url, "fridge-1.t") > 0
                await site.mount("fridge-2.t", "fridge-2")
                await site.point(
                    "plc", "fridge-2.t", f"nsu={TEST_NAMESPACE};s=fridge-b.Temperature"
                )
                await until(site, "applied_version", 2)
                assert (await status(site))["in_step"] is True
                assert (tmp_path / "config.json").stat().st_mode & 0o077 == 0  # owner only
            finally:
                agent.send_signal(signal.SIGTERM)
                code = agent.wait(timeout=60)
                log.close()
            assert code == 0, (tmp_path / "edge.log").read_text()[-3000:]
