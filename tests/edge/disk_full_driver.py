"""Runs the agent on a small filesystem until it is full, restarts it there, brings the cloud
back, and prints what happened as JSON (driven by ``test_outbox_disk_full.py``, which runs it
inside a private mount namespace on a tmpfs of a few MiB: a real ENOSPC, no fault injection).

Usage: ``python -m tests.edge.disk_full_driver DIR``
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from edge.agent import Agent, run_agent
from edge.config import EdgeConfig
from tests.edge.conftest import FakeCloud, reading
from tests.edge.test_agent_outages import DOWN, Device, filler
from tests.edge.test_agent_supervisor import edge_config, stored_readings

TUPLES = 900  # 9,000 readings, more than a 2 MiB filesystem holds


async def until(check: Any, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        await asyncio.sleep(0.02)
    return False


async def run_phase(
    config: EdgeConfig, device: Device, cloud: FakeCloud, wait_for: Any, seconds: float
) -> dict[str, Any]:
    stop = asyncio.Event()
    agents: list[Agent] = []
    client = cloud.client()
    task = asyncio.create_task(
        run_agent(config, stop, [device.spec()], client=client, started=agents.append)
    )
    began = time.monotonic()
    reached = await until(lambda: bool(agents) and wait_for(agents[0]), seconds)
    took = time.monotonic() - began
    snap = agents[0].snapshot() if agents else None
    started = time.monotonic()
    stop.set()
    error = None
    try:
        await asyncio.wait_for(task, 30)
    except Exception as err:
        error = repr(err)
    await client.aclose()
    return {
        "reached": reached,
        "seconds": took,
        "stop_seconds": time.monotonic() - started,
        "error": error,
        "disk_full": snap.outbox.disk_full if snap else None,
        "alarms": sorted(snap.alarms) if snap else [],
        "source_states": [s.state for s in snap.sources] if snap else [],
        "records": snap.outbox.records if snap else None,
    }


async def main(folder: Path) -> dict[str, Any]:
    cloud = FakeCloud()
    cloud.script = list(DOWN)
    device = Device("loggers", filler(TUPLES))
    config = edge_config(
        folder,
        outbox={
            "path": str(folder / "outbox.db"),
            "reserve_bytes": 512 * 1024,
            "watch_interval": 0.05,
            "disk_retry": 0.2,
        },
        supervision={"stop_grace": 1, "shutdown_flush": 0.2},
        cloud={"max_batch_records": 500, "max_batch_bytes": 128 * 1024},
    )
    out: dict[str, Any] = {}

    def disk_full(agent: Agent) -> bool:
        return "outbox/disk_full" in agent.snapshot().alarms

    out["filled"] = await run_phase(config, device, cloud, disk_full, 60)
    out["acked_when_full"] = device.acked
    out["restarted_full"] = await run_phase(config, device, cloud, disk_full, 30)
    cloud.script.clear()  # the cloud comes back

    def delivered(agent: Agent) -> bool:
        return len(stored_readings(cloud, "filler/t")) == TUPLES * 10

    out["recovered"] = await run_phase(config, device, cloud, delivered, 120)
    got = stored_readings(cloud, "filler/t")
    out["stored"] = len(got)
    out["in_order_once"] = got == [reading(i, "filler/t") for i in range(TUPLES * 10)]
    out["seqs_contiguous"] = all(
        b.seq == a.seq + 1 or b.seq == 1
        for a, b in zip(cloud.stored, cloud.stored[1:], strict=False)
    )
    return out


if __name__ == "__main__":
    result = asyncio.run(main(Path(sys.argv[1])))
    print(json.dumps(result))
