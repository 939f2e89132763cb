"""A real ``coldtrace edge run`` reading an OPC-UA server: asyncua logs at WARNING by default.

asyncua logs every PublishResult at INFO ("Publish callback called with result", about 110 MB
a day per node at 1 s publishing). The agent's default log level is INFO, so it sets asyncua's
loggers to WARNING unless ``--log-level DEBUG`` is given (issue 13 item 9). The same agent run
with ``--log-level DEBUG`` shows those lines, so their absence is not an accident of the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from coldtrace.devservices import REPO_ROOT, free_port
from tests.support.opcua_servers import UaTestServer, running_server
from tests.support.temperature_sources import TEST_NAMESPACE

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.timeout(60)]

PUBLISH_LINE = "Publish callback called with result"
ASYNCUA_LINE = re.compile(r" (DEBUG|INFO) asyncua[.:]")


def write_config(tmp_path: Path, endpoint: str, health_port: int) -> Path:
    config = {
        "gateway_id": "gw-logging",
        "cloud": {
            "cloud_url": f"http://127.0.0.1:{free_port()}",  # nobody: records stay in the outbox
            "allow_insecure_http": True,
            "token": "t",
        },
        "outbox": {"path": str(tmp_path / "outbox.db")},
        "health": {"port": health_port},
        "supervision": {"shutdown_flush": 0.5, "stop_grace": 5},
        "opcua": [
            {
                "name": "plc-1",
                "endpoint": endpoint,
                "nodes": {f"nsu={TEST_NAMESPACE};s=fridge-b.Temperature": "fridge-b/t"},
                "sampling_interval": 0.02,
                "publishing_interval": 0.05,
                "keepalive_count": 4,
                "watchdog": 2,
            }
        ],
    }
    path = tmp_path / "edge.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


async def committed(port: int) -> int:
    try:
        async with httpx.AsyncClient(timeout=1) as client:
            body = (await client.get(f"http://127.0.0.1:{port}/healthz")).json()
    except httpx.TransportError:
        return -1
    source = body["sources"].get("opcua:plc-1", {})
    return int(source.get("records", 0))


async def keep_writing(server: UaTestServer) -> None:
    value = 4.0
    while True:
        value = 4.0 if value > 6.0 else value + 0.1
        await server.write("fridge-b", round(value, 1), None)
        await asyncio.sleep(0.05)


def prepare(folder: Path, endpoint: str) -> tuple[Path, Path, int]:
    """The agent's configuration file, its log file and its health port."""
    folder.mkdir()
    health_port = free_port()
    return write_config(folder, endpoint, health_port), folder / "agent.log", health_port


async def run_agent(folder: Path, server: UaTestServer, *flags: str) -> str:
    """Runs the agent until it has committed 20 readings, stops it, and returns its log."""
    config, log, health_port = await asyncio.to_thread(prepare, folder, server.endpoint)
    out = await asyncio.to_thread(log.open, "wb")
    with out:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "coldtrace", "edge", "run", "--config", str(config), *flags,
            stdout=out, stderr=asyncio.subprocess.STDOUT, cwd=REPO_ROOT,
        )  # fmt: skip
    writer = asyncio.create_task(keep_writing(server))
    try:
        async with asyncio.timeout(30):
            while await committed(health_port) < 20:
                assert process.returncode is None, await asyncio.to_thread(log.read_text)
                await asyncio.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(20):
            code = await process.wait()
    finally:
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await writer
        if process.returncode is None:
            process.kill()
            await process.wait()
    text = await asyncio.to_thread(log.read_text)
    assert code == 0, text
    return text


async def test_asyncua_logs_at_warning_by_default(tmp_path: Path) -> None:
    async with running_server() as server:
        default = await run_agent(tmp_path / "default", server)
        debug = await run_agent(tmp_path / "debug", server, "--log-level", "DEBUG")
    assert "edge agent gw-logging starting" in default  # our own INFO lines are kept
    assert not [line for line in default.splitlines() if ASYNCUA_LINE.search(line)]
    # One per PublishResult when asked for; a loaded machine packs several values into one
    # publish, so 20 values are not 20 lines.
    assert debug.count(PUBLISH_LINE) >= 3
