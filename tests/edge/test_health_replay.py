"""The replay window shows in the agent's /healthz and /metrics."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.edge.conftest import FakeCloud
from tests.edge.test_agent_supervisor import Lives, Running, edge_config, eventually, tuples


async def test_health_shows_what_a_restored_cloud_could_get_back(tmp_path: Path) -> None:
    cloud = FakeCloud()
    source = Lives("a", [*tuples(0, 20, "a/t")])
    async with Running(edge_config(tmp_path), [source.spec()], cloud) as run:
        await eventually(lambda: len(cloud.stored) >= 20)

        async def kept() -> int:
            body = (await run.get("/healthz")).json()
            return int(body["outbox"]["replay"]["records"])

        for _ in range(500):  # the last ack lands just after the cloud stored the batch
            if await kept() == len(cloud.stored):
                break
            await asyncio.sleep(0.02)
        replay = (await run.get("/healthz")).json()["outbox"]["replay"]
        metrics = (await run.get("/metrics")).text
    assert replay["window_seconds"] == 7 * 24 * 3600
    assert replay["records"] == len(cloud.stored)
    assert replay["from_seq"] == 1
    assert replay["since"] is not None
    assert f"coldtrace_edge_outbox_replay_records {float(len(cloud.stored))}" in metrics
    assert "coldtrace_edge_outbox_replay_covered_seconds" in metrics
