"""The agent takes its configuration from the real cloud (in-process app, real TimescaleDB) and
reads in-process asyncua servers: a change of one source restarts only that source, a bad
configuration is refused and reported while the old one keeps running, and a start without the
cloud runs on the last good configuration."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from edge.agent import Agent, run_agent
from edge.cli import source_specs
from edge.config import EdgeConfig
from edge.health import SourceHealth
from tests.support.gateway_config import Commissioning, commissioning
from tests.support.opcua_servers import FAST, UaTestServer, running_server
from tests.support.temperature_sources import TEST_NAMESPACE
from tests.support.waiting import poll_until

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def servers() -> AsyncIterator[tuple[UaTestServer, UaTestServer]]:
    async with running_server() as a, running_server() as b:
        yield a, b


def node(unit: str) -> str:
    return f"nsu={TEST_NAMESPACE};s={unit}.Temperature"


def fast_settings(endpoint: str) -> dict[str, Any]:
    timing = {k: v.total_seconds() if isinstance(v, timedelta) else v for k, v in FAST.items()}
    return {"endpoint": endpoint, "history_read": False, **timing}


def edge_config(tmp_path: Path, token: str) -> EdgeConfig:
    return EdgeConfig.model_validate(
        {
            "gateway_id": "gw-1",
            "cloud": {"cloud_url": "http://cloud", "allow_insecure_http": True, "token": token,
                      "linger": 0.05, "backoff_initial": 0.05, "backoff_max": 0.2},
            "outbox": {"path": str(tmp_path / "outbox.db"), "watch_interval": 0.05},
            "health": {"enabled": False},
            "clock": {"check_interval": 0.5},
            "supervision": {"shutdown_flush": 0.5, "stop_grace": 2},
            "remote_config": {"poll_interval": 0.1, "cache_path": str(tmp_path / "config.json"),
                              "start_timeout": 5},
        }
    )  # fmt: skip


eventually = partial(poll_until, seconds=30)
"""Polls for at most the seconds this module's agents may take."""


class Running:
    """``run_agent`` in a task, as ``coldtrace edge run`` starts it, stopped on exit."""

    def __init__(self, config: EdgeConfig, client: httpx.AsyncClient) -> None:
        self.config, self.client = config, client
        self.stop = asyncio.Event()
        self.agent: Agent | None = None

    async def __aenter__(self) -> Running:
        def started(agent: Agent) -> None:
            self.agent = agent

        running = run_agent(
            self.config, self.stop, [], client=self.client, started=started,
            build_sources=source_specs,
        )  # fmt: skip
        self.task = asyncio.create_task(running)
        await eventually(lambda: self.agent is not None and self.agent.ready.is_set())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, 30)

    def sources(self) -> dict[str, SourceHealth]:
        assert self.agent is not None
        return {s.name: s for s in self.agent.snapshot().sources}

    def reading(self, *names: str) -> bool:
        found = self.sources()
        return all(n in found and found[n].records > 0 for n in names)

    @property
    def version(self) -> int | None:
        assert self.agent is not None
        assert self.agent.remote is not None
        return self.agent.remote.state.version


async def commission(site: Commissioning, a: UaTestServer, b: UaTestServer) -> None:
    await site.source("plc-a", "opcua", **fast_settings(a.endpoint))
    await site.source("plc-b", "opcua", **fast_settings(b.endpoint))
    await site.mount("fridge-1.t", "fridge-1")
    await site.mount("fridge-2.t", "fridge-2")
    await site.point("plc-a", "fridge-1.t", node("fridge-a"))
    await site.point("plc-b", "fridge-2.t", node("fridge-a"))


async def admin_view(site: Commissioning) -> dict[str, Any]:
    shown = await site.client.get("/v1/gateways/gw-1/config", headers=site.admin)
    assert shown.status_code == 200, shown.text
    body: dict[str, Any] = shown.json()
    return body


@asynccontextmanager
async def commissioned_run(
    url: str, servers: tuple[UaTestServer, UaTestServer], tmp_path: Path
) -> AsyncIterator[tuple[Commissioning, Running]]:
    """Gateway gw-1 commissioned with both PLCs, its agent running and reading both."""
    async with commissioning(url) as site:
        await commission(site, *servers)
        async with Running(edge_config(tmp_path, site.gateway.token), site.client) as run:
            await eventually(lambda: run.reading("opcua:plc-a", "opcua:plc-b"))
            yield site, run


async def test_one_changed_source_restarts_alone_and_a_bad_version_is_refused(
    timescale_url: str, servers: tuple[UaTestServer, UaTestServer], tmp_path: Path
) -> None:
    async with commissioned_run(timescale_url, servers, tmp_path) as (site, run):
        assert run.version == 1
        before = run.sources()
        # plc-b reads another node now: only plc-b is restarted
        await site.point("plc-b", "fridge-2.t", node("fridge-b"))
        await eventually(lambda: run.version == 2)
        after = run.sources()
        assert after["opcua:plc-a"] is before["opcua:plc-a"]
        assert after["opcua:plc-a"].restarts == 0
        assert after["opcua:plc-b"] is not before["opcua:plc-b"]
        await eventually(lambda: run.reading("opcua:plc-b"))
        await eventually(lambda: run.agent is not None and run.agent.remote is not None
                         and run.agent.remote.state.pending is None)  # fmt: skip
        assert (await admin_view(site))["applied_version"] == 2
        cached = json.loads((tmp_path / "config.json").read_text())
        assert cached["document"]["version"] == 2

        # a NodeId the edge's models refuse: version 3 is refused, version 2 keeps running
        await site.point("plc-a", "fridge-1.t", "not-a-node-id")
        await eventually(lambda: run.agent is not None and run.agent.remote is not None
                         and run.agent.remote.state.refused_version == 3)  # fmt: skip
        assert run.version == 2
        kept = run.sources()
        assert kept["opcua:plc-a"] is before["opcua:plc-a"]
        assert kept["opcua:plc-b"] is after["opcua:plc-b"]
        assert {s.state for s in kept.values()} == {"running"}
        view = await admin_view(site)
        assert view["refused_version"] == 3
        assert "opcua.0.nodes" in view["refused_reason"]
        assert view["applied_version"] == 2
        assert json.loads((tmp_path / "config.json").read_text())["document"]["version"] == 2


async def test_a_start_without_the_cloud_runs_the_last_good_configuration(
    timescale_url: str, servers: tuple[UaTestServer, UaTestServer], tmp_path: Path
) -> None:
    async with commissioned_run(timescale_url, servers, tmp_path) as (_, run):
        config = run.config

    def unreachable(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("cloud down", request=request)

    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(unreachable)) as offline,
        Running(config, offline) as run,
    ):
        assert run.agent is not None
        assert run.agent.remote is not None
        assert run.agent.remote.state.origin == "cache"
        assert run.version == 1
        await eventually(lambda: run.reading("opcua:plc-a", "opcua:plc-b"))


async def test_without_cache_or_cloud_the_local_file_is_used(tmp_path: Path) -> None:
    def unreachable(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("cloud down", request=request)

    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(unreachable)) as offline,
        Running(edge_config(tmp_path, "token"), offline) as run,
    ):
        assert run.agent is not None
        assert run.agent.remote is not None
        assert run.agent.remote.state.origin == "local"
        assert run.sources() == {}
