"""The configuration from the cloud on a filesystem that refuses its cache (full, read-only):
applied and reported, never a crash at start (issue 22 item 4: a full disk must not make every
restart crash)."""

from __future__ import annotations

from pathlib import Path

import httpx

from edge.clock import ManualClock
from edge.config import EdgeConfig
from edge.remote_config import ConfigClient, RemoteConfig, starting_config
from protocols.gateway_config import GatewayConfigDocument


def answer(version: int) -> httpx.Response:
    doc = GatewayConfigDocument(gateway_id="gw-1", version=version, sections={})
    return httpx.Response(200, json=doc.model_dump(mode="json"), headers={"ETag": f'"v{version}"'})


async def test_a_cache_the_disk_refuses_is_logged_and_the_configuration_runs(
    tmp_path: Path,
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    cache = blocker / "gateway-config.json"  # every write there fails with an OSError
    local = EdgeConfig.model_validate(
        {
            "gateway_id": "gw-1",
            "cloud": {"cloud_url": "https://cloud.example/", "token": "t"},
            "remote_config": {"cache_path": str(cache)},
        }
    )
    assert local.remote_config is not None
    reports: list[bytes] = []

    def cloud(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/report"):
            reports.append(request.content)
            return httpx.Response(204)
        return answer(1 if len(reports) == 0 else 2)

    applied: list[EdgeConfig] = []

    async def apply(config: EdgeConfig) -> None:
        applied.append(config)

    async with httpx.AsyncClient(transport=httpx.MockTransport(cloud)) as http:
        client = ConfigClient(http, local)
        config, state = await starting_config(local, client, local.remote_config)
        assert (state.origin, state.version) == ("cloud", 1)  # before: OSError, exit 1
        remote = RemoteConfig(
            local, client=client, settings=local.remote_config, clock=ManualClock(),
            apply=apply, state=state,
        )  # fmt: skip
        assert await remote.poll_once() == "applied"
    assert config.gateway_id == "gw-1"
    assert len(applied) == 1
    assert remote.state.version == 2
    assert len(reports) == 2  # both versions reported applied
    assert not cache.exists()
