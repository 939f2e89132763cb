"""Gateway configuration built from master data: served with an ETag, versioned, reported."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest

from edge.config import EdgeConfig
from edge.remote_config import ConfigRefusedError, merge
from protocols.gateway_config import GatewayConfigDocument
from tests.support.cloud_ingest import create_gateway
from tests.support.gateway_config import Commissioning, commissioning

pytestmark = pytest.mark.integration


@pytest.fixture
async def site(timescale_url: str) -> AsyncIterator[Commissioning]:
    async with commissioning(timescale_url) as c:
        yield c


def local_config(tmp_path: Path) -> EdgeConfig:
    return EdgeConfig.model_validate(
        {
            "gateway_id": "gw-1",
            "cloud": {"cloud_url": "https://cloud.example", "token": "t"},
            "outbox": {"path": str(tmp_path / "outbox.db")},
            "remote_config": {"cache_path": str(tmp_path / "config.json")},
        }
    )


async def furnish(site: Commissioning) -> None:
    await site.source("plc", "opcua", endpoint="opc.tcp://plc.example:4840")
    await site.source("broker", "mqtt", broker_url="mqtt://broker.example:1883")
    await site.source("dock-reader", "llrp", host="10.0.0.5", antennas=[1, 2])
    await site.mount("fridge-1.t", "fridge-1")
    await site.mount("fridge-2.t", "fridge-2")
    await site.point("plc", "fridge-1.t", "ns=2;s=Fridge1.Temperature")
    await site.point("broker", "fridge-2.t", "loggers/fridge-2", format="coldtrace-json")
    door = {"reader": "dock-reader", "outside_antennas": [1], "inside_antennas": [2]}
    await site.put("/v1/gateways/gw-1/doors/dock-1", door)


async def test_the_gateway_gets_its_master_data_as_a_valid_edge_configuration(
    site: Commissioning, tmp_path: Path
) -> None:
    await furnish(site)
    got = await site.client.get("/v1/gateway/config", headers=site.gateway.headers)
    assert got.status_code == 200, got.text
    assert got.headers["ETag"].startswith('"gw-1.1.')
    doc = GatewayConfigDocument.model_validate(got.json())
    # the edge's own models accept it, ids as the master data has them
    config = merge(local_config(tmp_path), doc)
    assert config.opcua[0].nodes == {"ns=2;s=Fridge1.Temperature": "fridge-1.t"}
    assert config.mqtt[0].decoders[0].topic == "loggers/fridge-2"
    assert config.mqtt[0].decoders[0].sensor_id == "fridge-2.t"
    assert config.doors[0].door_id == "dock-1"
    assert config.llrp[0].reader_id == "dock-reader"
    limits = config.alarms.sensors["fridge-1.t"]
    assert (limits.low, limits.high) == (2.0, 8.0)
    # unchanged: 304 on the ETag, same version
    again = await site.client.get(
        "/v1/gateway/config", headers=site.gateway.headers | {"If-None-Match": got.headers["ETag"]}
    )
    assert again.status_code == 304
    # a master-data change (the fridge's profile) makes version 2
    async with await psycopg.AsyncConnection.connect(site.url) as conn:
        await conn.execute(
            "UPDATE storage_profiles SET action_high = 7.5 WHERE profile_id = 'refrigerated'"
        )
        await conn.commit()
    changed = await site.client.get(
        "/v1/gateway/config", headers=site.gateway.headers | {"If-None-Match": got.headers["ETag"]}
    )
    assert changed.status_code == 200
    assert changed.json()["version"] == 2
    assert changed.json()["sections"]["alarms"]["sensors"]["fridge-1.t"]["high"] == 7.5


async def test_reports_are_shown_to_admins_only(site: Commissioning) -> None:
    await furnish(site)
    gw = site.gateway.headers
    assert (await site.client.get("/v1/gateway/config", headers=gw)).json()["version"] == 1
    applied = await site.client.post(
        "/v1/gateway/config/report", json={"version": 1, "applied": True}, headers=gw
    )
    assert applied.status_code == 204, applied.text
    shown = await site.client.get("/v1/gateways/gw-1/config", headers=site.admin)
    assert shown.status_code == 200
    assert shown.json()["in_step"] is True
    assert shown.json()["applied_version"] == 1
    await site.mount("fridge-3.t", "fridge-2")
    await site.point("plc", "fridge-3.t", "not-a-node-id")
    shown = await site.client.get("/v1/gateways/gw-1/config", headers=site.admin)
    assert shown.json()["version"] == 2
    assert shown.json()["in_step"] is False
    refused = {"version": 2, "applied": False, "reason": "opcua.0.nodes: invalid NodeId"}
    told = await site.client.post("/v1/gateway/config/report", json=refused, headers=gw)
    assert told.status_code == 204
    shown = await site.client.get("/v1/gateways/gw-1/config", headers=site.admin)
    assert shown.json()["refused_version"] == 2
    assert "invalid NodeId" in shown.json()["refused_reason"]
    assert shown.json()["applied_version"] == 1
    never = {"version": 9, "applied": True}
    assert (
        await site.client.post("/v1/gateway/config/report", json=never, headers=gw)
    ).status_code == 404
    assert (
        await site.client.get("/v1/gateways/gw-1/config", headers=site.viewer)
    ).status_code == 403
    assert (await site.client.get("/v1/gateway/config")).status_code == 401
    assert (await site.client.get("/v1/gateway/config", headers=site.admin)).status_code == 401


async def test_a_bad_node_id_is_refused_by_the_edge_models(
    site: Commissioning, tmp_path: Path
) -> None:
    await furnish(site)
    await site.point("plc", "fridge-1.t", "not-a-node-id")
    got = await site.client.get("/v1/gateway/config", headers=site.gateway.headers)
    with pytest.raises(ConfigRefusedError, match=r"opcua\.0\.nodes"):
        merge(local_config(tmp_path), GatewayConfigDocument.model_validate(got.json()))


async def test_passwords_are_masked_for_admins_and_served_to_the_gateway(
    site: Commissioning,
) -> None:
    await furnish(site)
    body = {
        "kind": "mqtt",
        "settings": {"broker_url": "mqtt://broker.example:1883"},
        "credentials": {"username": "gw", "password": "s3cret"},
    }
    await site.put("/v1/gateways/gw-1/sources/broker", body)
    served = await site.client.get("/v1/gateway/config", headers=site.gateway.headers)
    assert served.json()["sections"]["mqtt"][0]["password"] == "s3cret"
    shown = await site.client.get("/v1/gateways/gw-1/config", headers=site.admin)
    assert shown.json()["sections"]["mqtt"][0]["password"] == "***"
    assert "s3cret" not in shown.text


async def test_wrong_settings_are_refused_with_a_reason(site: Commissioning) -> None:
    await furnish(site)
    headers = site.admin
    cases = [
        ("/v1/gateways/gw-1/sources/x", {"kind": "opcua", "settings": {"nodes": {}}}, 422),
        ("/v1/gateways/gw-1/sources/x", {"kind": "ftp"}, 422),
        ("/v1/gateways/gw-1/sources/plc", {"kind": "mqtt"}, 422),  # kind of a name is fixed
        ("/v1/gateways/gw-9/sources/x", {"kind": "llrp"}, 404),
        ("/v1/gateways/gw-1/sources/none/points/s1", {"address": "a"}, 404),
        ("/v1/gateways/gw-1/sources/dock-reader/points/s1", {"address": "a"}, 422),
    ]
    for path, body, code in cases:
        answer = await site.client.put(path, json=body, headers=headers)
        assert answer.status_code == code, (path, answer.text)


async def test_another_gateways_token_gets_its_own_configuration(site: Commissioning) -> None:
    await furnish(site)
    other = await create_gateway(site.url, "gw-2", "site-1")
    got = await site.client.get("/v1/gateway/config", headers=other.headers)
    assert got.json()["gateway_id"] == "gw-2"
    assert got.json()["sections"]["opcua"] == []
