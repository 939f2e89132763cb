"""``/docs`` and ``/redoc`` work on a site without internet: every asset they load is ours."""

from __future__ import annotations

import re

import pytest

from tests.support.cloud_ingest import app_client

pytestmark = pytest.mark.integration

ASSET = re.compile(r"""(?:src|href)=["']([^"']+)["']""")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_docs_pages_load_only_local_assets(timescale_url: str, page: str) -> None:
    async with app_client(timescale_url) as client:
        response = await client.get(page)
        assert response.status_code == 200
        assets = ASSET.findall(response.text)
        scripts = [a for a in assets if a.endswith(".js")]
        assert scripts, response.text
        for asset in assets:
            assert asset.startswith("/"), f"{page} loads {asset} from elsewhere"
            fetched = await client.get(asset)
            assert fetched.status_code == 200, asset
            assert len(fetched.content) > 1000, asset
        assert "cdn." not in response.text
        openapi = await client.get("/openapi.json")
        assert openapi.json()["info"]["title"] == "coldtrace"
