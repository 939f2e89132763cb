"""OPC-UA browsing through the gateway: an admin asks the real cloud, the agent's worker takes
the request, browses an in-process asyncua server and posts the nodes; the admin picks one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from coldtrace.devservices import free_port
from edge.browse_requests import BrowseWorker
from edge.clock import ManualClock
from edge.config import EdgeConfig
from edge.remote_config import ConfigClient
from edge.sources.opcua_browse import browse
from edge.sources.opcua_config import OpcUaEndpointConfig
from tests.support.gateway_config import WHY, Commissioning, commissioning
from tests.support.opcua_servers import UaTestServer, running_server
from tests.support.temperature_sources import TEST_NAMESPACE

pytestmark = pytest.mark.integration

TEMPERATURE_A = f"nsu={TEST_NAMESPACE};s=fridge-a.Temperature"


@pytest.fixture(scope="module")
async def server() -> AsyncIterator[UaTestServer]:
    async with running_server() as test_server:
        yield test_server


@pytest.fixture
async def site(timescale_url: str) -> AsyncIterator[Commissioning]:
    async with commissioning(timescale_url) as c:
        yield c


def worker(site: Commissioning, tmp_path: Path) -> BrowseWorker:
    config = EdgeConfig.model_validate(
        {
            "gateway_id": "gw-1",
            "cloud": {"cloud_url": "http://cloud", "allow_insecure_http": True,
                      "token": site.gateway.token},
            "outbox": {"path": str(tmp_path / "outbox.db")},
        }
    )  # fmt: skip
    return BrowseWorker(ConfigClient(site.client, config), ManualClock(), 1.0)


async def ask(site: Commissioning, **body: Any) -> int:
    asked = await site.client.post("/v1/gateways/gw-1/browse", json=body, headers=site.admin)
    assert asked.status_code == 202, asked.text
    request_id: int = asked.json()["request_id"]
    return request_id


async def result(site: Commissioning, request_id: int) -> dict[str, Any]:
    got = await site.client.get(f"/v1/gateways/gw-1/browse/{request_id}", headers=site.admin)
    assert got.status_code == 200, got.text
    body: dict[str, Any] = got.json()
    return body


async def test_the_admin_browses_through_the_gateway_and_picks_a_node(
    site: Commissioning, server: UaTestServer, tmp_path: Path
) -> None:
    await site.source("plc", "opcua", endpoint=server.endpoint, request_timeout=5)
    request_id = await ask(site, source="plc", depth=3)
    assert (await result(site, request_id))["answered_at"] is None
    await server.write("fridge-a", 4.25, None)
    assert await worker(site, tmp_path).poll_once() == 1
    answered = await result(site, request_id)
    assert answered["error"] is None
    nodes = {n["node_id"]: n for n in answered["nodes"]}
    temperature = nodes[TEMPERATURE_A]
    assert temperature["path"].endswith("fridge-a/Temperature")
    assert temperature["node_class"] == "Variable"
    assert temperature["data_type"] == "Double"
    assert temperature["value"] == 4.25
    # the server's own objects (namespace 0) are listed, not walked
    assert nodes["i=2253"]["path"] == "Server"
    assert not any(n["path"].startswith("Server/") for n in answered["nodes"])
    # answered once: the next poll finds nothing
    assert await worker(site, tmp_path).poll_once() == 0
    # the admin picks the node: the gateway's configuration reads it as fridge-1.t
    await site.mount("fridge-1.t", "fridge-1")
    await site.point("plc", "fridge-1.t", temperature["node_id"])
    config = await site.client.get("/v1/gateway/config", headers=site.gateway.headers)
    assert config.json()["sections"]["opcua"][0]["nodes"] == {TEMPERATURE_A: "fridge-1.t"}


async def test_an_unreachable_server_is_answered_with_the_reason(
    site: Commissioning, tmp_path: Path
) -> None:
    dead = f"opc.tcp://127.0.0.1:{free_port()}/"
    await site.source("plc", "opcua", endpoint=dead, request_timeout=1)
    request_id = await ask(site, source="plc")
    assert await worker(site, tmp_path).poll_once() == 1
    answered = await result(site, request_id)
    assert answered["nodes"] == []
    assert "cannot connect" in answered["error"]


async def test_browse_requests_are_refused_for_other_sources(site: Commissioning) -> None:
    await site.source("dock", "llrp", host="10.0.0.9")
    refused = await site.client.post(
        "/v1/gateways/gw-1/browse", json={"source": "dock"}, headers=site.admin | WHY
    )
    assert refused.status_code == 422
    missing = await site.client.post(
        "/v1/gateways/gw-1/browse", json={"source": "nope"}, headers=site.admin
    )
    assert missing.status_code == 404
    viewer = await site.client.post(
        "/v1/gateways/gw-1/browse", json={"source": "dock"}, headers=site.viewer
    )
    assert viewer.status_code == 403


async def test_the_walk_stops_at_its_depth_and_node_limit(server: UaTestServer) -> None:
    cfg = OpcUaEndpointConfig.model_validate(
        {"name": "plc", "endpoint": server.endpoint, "nodes": {"i=85": "browse"},
         "request_timeout": timedelta(seconds=5)}
    )  # fmt: skip
    shallow = await browse(cfg, "i=85", depth=1)
    assert {n.node_class for n in shallow.nodes} == {"Object"}
    assert not shallow.truncated
    cut = await browse(cfg, "i=85", depth=3, max_nodes=2)
    assert len(cut.nodes) == 2
    assert cut.truncated
