"""The agent's software version, from the User-Agent of its batches, kept per gateway."""

from __future__ import annotations

from uuid import uuid4

import psycopg
import pytest

from cloud.admin.queries import gateways
from tests.support.cloud_ingest import app_client, batch_of, create_gateway, gz, viewer_headers

pytestmark = pytest.mark.integration


async def _versions(url: str) -> dict[str, str | None]:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        return {g.gateway_id: g.software_version for g in await gateways(conn)}


async def test_the_version_an_agent_sends_is_kept_and_others_change_nothing(
    timescale_url: str,
) -> None:
    gw = await create_gateway(timescale_url, "gw-1")
    other = await create_gateway(timescale_url, "gw-2")
    boot = uuid4()
    async with app_client(timescale_url) as client:

        async def send(first: int, agent: str | None, who: str = "gw-1") -> None:
            token = gw.token if who == "gw-1" else other.token
            headers = {"Authorization": f"Bearer {token}", "Content-Encoding": "gzip",
                       "Content-Type": "application/json"}  # fmt: skip
            if agent is not None:
                headers["User-Agent"] = agent
            r = await client.post("/v1/batches", content=gz(batch_of(who, boot, first, 2)),
                                  headers=headers)  # fmt: skip
            assert r.status_code == 200, r.text

        await send(1, "coldtrace-edge/0.1.0")
        assert await _versions(timescale_url) == {"gw-1": "0.1.0", "gw-2": None}
        await send(3, "python-httpx/0.28.1")  # not an agent's: the version stays
        await send(5, None)
        assert (await _versions(timescale_url))["gw-1"] == "0.1.0"
        await send(7, "coldtrace-edge/0.2.0 (linux)")
        await send(1, "coldtrace-edge/0.1.0", who="gw-2")
        assert await _versions(timescale_url) == {"gw-1": "0.2.0", "gw-2": "0.1.0"}
        listed = await client.get("/v1/gateways", headers=await viewer_headers(timescale_url))
        assert {g["gateway_id"]: g["software_version"] for g in listed.json()} == {
            "gw-1": "0.2.0", "gw-2": "0.1.0",
        }  # fmt: skip
