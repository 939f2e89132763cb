"""The discovery page (/ui/discovery): unassigned devices for everyone, one-click mount and OPC-UA
browsing for admins, behind the session and the anti-forgery header."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from cloud.gateway_config import browse
from cloud.web.discovery_page import nodes_fragment
from tests.support.gateway_config import Commissioning, commissioning, report

pytestmark = pytest.mark.integration

ACTION = {"X-Coldtrace-Action": "1"}


@pytest.fixture
async def site(timescale_url: str) -> AsyncIterator[Commissioning]:
    async with commissioning(timescale_url) as c:
        yield c


async def sign_in(site: Commissioning, headers: dict[str, str]) -> None:
    token = headers["Authorization"].removeprefix("Bearer ")
    signed = await site.client.post("/ui/login", data={"token": token})
    assert signed.status_code in {200, 303}, signed.text


async def test_an_admin_mounts_an_unassigned_sensor_from_the_page(site: Commissioning) -> None:
    await report(site)
    assert (await site.client.get("/ui/discovery")).status_code == 303
    await sign_in(site, site.admin)
    page = await site.client.get("/ui/discovery")
    assert page.status_code == 200
    assert "probe-9" in page.text
    assert "reader-9" in page.text
    assert 'data-device="probe-9"' in page.text
    assert '<option value="fridge-1">' in page.text
    assert "Browse an OPC-UA server" in page.text
    assert (await site.client.get("/ui/discovery.js")).status_code == 200
    body = {"device_id": "probe-9", "location_id": "fridge-1"}
    forged = await site.client.post("/ui/discovery/mount", json=body)
    assert forged.status_code == 403
    done = await site.client.post("/ui/discovery/mount", json=body, headers=ACTION)
    assert done.status_code == 200, done.text
    page = await site.client.get("/ui/discovery")
    assert "probe-9" not in page.text
    assert "reader-9" in page.text


async def test_a_viewer_sees_the_list_without_actions(site: Commissioning) -> None:
    await report(site)
    await sign_in(site, site.viewer)
    page = await site.client.get("/ui/discovery")
    assert "probe-9" in page.text
    assert "data-device" not in page.text
    assert "Browse an OPC-UA server" not in page.text
    body = {"device_id": "probe-9", "location_id": "fridge-1"}
    refused = await site.client.post("/ui/discovery/mount", json=body, headers=ACTION)
    assert refused.status_code == 403


def test_browse_results_escape_what_the_server_names() -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 1, 1, tzinfo=UTC)
    found = browse.BrowseStatus(
        request_id=1, gateway_id="gw-1", source_name="plc", start_node="i=85", depth=3,
        requested_by="admin", requested_at=now, taken_at=now, answered_at=now,
        nodes=[{"node_id": "nsu=urn:x;s=<b>", "path": "A/<script>", "display_name": "x",
                "node_class": "Variable", "data_type": "Double", "value": 4.0}],
        truncated=False, error=None,
    )  # fmt: skip
    html = nodes_fragment(found)
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert 'data-node="nsu=urn:x;s=&lt;b&gt;"' in html
    assert "Read as sensor" in html
