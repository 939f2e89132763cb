"""The outbound door's local alarm in the running agent: the real cloud (in-process app, real
TimescaleDB) serves the site's door list, the LLRP reader simulator drives pallets out through
the dock door. A quarantined unit sounds the door's alarm, the next pallet of ordered good units
clears it, and a start without the cloud judges by the cached list."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from edge.agent import Agent, run_agent
from edge.cli import source_specs
from edge.config import EdgeConfig
from protocols.gs1.epc import encode_sgtin96
from simulators.llrp_reader import LlrpReaderSimulator, SimulatorConfig
from simulators.scene import PalletPass, dock_door
from tests.support.cloud_ingest import app_client, create_gateway
from tests.support.ledger_seed import GTIN_A, seed
from tests.support.llrp import EPOCH, fast_config
from tests.support.transfers_seed import Doors, stock_in, supplier_asn
from tests.support.waiting import poll_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

QUARANTINED = [encode_sgtin96(GTIN_A, s, 7) for s in (90, 91)]  # lot L0
GOOD = [encode_sgtin96(GTIN_A, s, 7) for s in (1, 2, 3)]  # lot L1
KEY = "door:dock-1"


async def stocked_site(url: str) -> None:
    """Site 1 holds L1 (usable) and L0 (quarantined) units of GTIN A; a transfer orders A."""
    from cloud.receiving.asn import AsnIn
    from cloud.receiving.store import create_asn
    from cloud.transfers.store import TransferIn, create_transfer

    async with await psycopg.AsyncConnection.connect(url) as conn:
        await seed(conn)
        await create_asn(conn, AsnIn.model_validate(supplier_asn()))
        await conn.commit()
        await stock_in(conn, Doors(conn))
        order = {
            "reference": "TR-DOOR", "from_site": "site-1", "to_site": None, "customer": "H",
            "lines": [{"gtin": GTIN_A, "quantity": 2}], "min_remaining_days": 0,
        }  # fmt: skip
        await create_transfer(conn, TransferIn.model_validate(order))
        # the cloud judges expiry on today's date: keep both lots in date whatever the day
        await conn.execute("UPDATE lots SET expiry = current_date + 365")
        await conn.execute("UPDATE lots SET status = 'quarantined' WHERE lot_number = 'L0'")
        await conn.commit()


def agent_config(tmp_path: Path, token: str, reader_port: int) -> EdgeConfig:
    return EdgeConfig.model_validate(
        {
            "gateway_id": "gw-1",
            "cloud": {"cloud_url": "http://cloud", "allow_insecure_http": True, "token": token,
                      "linger": 0.05, "backoff_initial": 0.05, "backoff_max": 0.2},
            "outbox": {"path": str(tmp_path / "outbox.db"), "watch_interval": 0.05},
            "health": {"enabled": False},
            "clock": {"check_interval": 0.5},
            "supervision": {"shutdown_flush": 0.5, "stop_grace": 2},
            "llrp": [fast_config(reader_port).model_dump(mode="python")],
            "doors": [{"door_id": "dock-1", "reader_id": "dock-reader-1",
                       "outside_antennas": [1], "inside_antennas": [2],
                       "quiet_gap": timedelta(seconds=1), "max_dwell": timedelta(seconds=30)}],
            "door_guard": {"site_id": "site-1", "poll_interval": 0.2,
                           "cache_path": str(tmp_path / "door-list.json")},
        }
    )  # fmt: skip


eventually = partial(poll_until, seconds=40)
"""Polls for at most the seconds this module's agents may take."""


class Running:
    """``run_agent`` in a task, stopped on exit."""

    def __init__(self, config: EdgeConfig, client: httpx.AsyncClient) -> None:
        self.config, self.client = config, client
        self.stop = asyncio.Event()
        self.agent: Agent | None = None

    async def __aenter__(self) -> Agent:
        def started(agent: Agent) -> None:
            self.agent = agent

        self.task = asyncio.create_task(
            run_agent(
                self.config, self.stop, source_specs(self.config), client=self.client,
                started=started,
            )
        )  # fmt: skip
        await eventually(lambda: self.agent is not None and self.agent.ready.is_set())
        assert self.agent is not None
        return self.agent

    async def __aexit__(self, *exc: object) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, 30)


async def door_statuses(url: str) -> list[str]:
    """What the gateway told the cloud about the door's local alarm, in order."""
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cur = await conn.execute(
            "SELECT detail FROM device_status WHERE detail LIKE %s ORDER BY time, detail",
            (f"local alarm {KEY}%",),
        )
        return [str(row[0]) for row in await cur.fetchall()]


def scene_of(*pallets: tuple[list[str], float]) -> Any:
    scene = dock_door(seed=5)
    for epcs, start in pallets:
        scene.add(PalletPass(tuple(epcs), start=start, direction="out"))
    return scene


async def test_a_quarantined_unit_sounds_the_door_alarm_and_a_good_pallet_clears_it(
    tmp_path: Path, timescale_url: str
) -> None:
    await stocked_site(timescale_url)
    gateway = await create_gateway(timescale_url, "gw-1", "site-1")
    # the quarantined pallet first, the ordered good one 12 simulated seconds later
    scene = scene_of((QUARANTINED, 0.5), (GOOD, 12.5))
    sim_config = SimulatorConfig(port=0, speed=2.0, epoch=EPOCH)
    async with app_client(timescale_url) as client:
        listed = await client.get("/v1/sites/site-1/door-list", headers=gateway.headers)
        assert listed.status_code == 200, listed.text
        assert set(listed.json()["blocked"].values()) == {"lot quarantined"}
        async with LlrpReaderSimulator(scene, sim_config) as sim:
            config = agent_config(tmp_path, gateway.token, sim.port)
            async with Running(config, client) as agent:
                assert agent.door_feed is not None
                await eventually(
                    lambda: agent.door_feed is not None and agent.door_feed.origin == "cloud"
                )
                await eventually(lambda: KEY in agent.snapshot().alarms)
                message = agent.snapshot().alarms[KEY]
                assert "lot quarantined" in message
                assert f"(01){GTIN_A}(21)90" in message or f"(01){GTIN_A}(21)91" in message
                await eventually(lambda: KEY not in agent.snapshot().alarms)  # the good pallet
                await agent_sent(timescale_url, 2)
    statuses = await door_statuses(timescale_url)
    assert statuses[0].startswith(f"local alarm {KEY}: blocked at door dock-1")
    assert statuses[1].startswith(f"local alarm {KEY} cleared")
    for serial in (1, 2, 3):  # the good units are not named
        assert f"(21){serial} (" not in statuses[0]
    cached = tmp_path / "door-list.json"
    assert cached.exists()


async def agent_sent(url: str, count: int) -> None:
    """Waits until the cloud stored ``count`` door alarm statuses from the gateway."""
    for _ in range(2000):
        if len(await door_statuses(url)) >= count:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the door alarm statuses did not reach the cloud")


def unreachable(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("cloud unreachable", request=request)


async def test_a_start_without_the_cloud_judges_by_the_cached_list(
    tmp_path: Path, timescale_url: str
) -> None:
    await stocked_site(timescale_url)
    gateway = await create_gateway(timescale_url, "gw-1", "site-1")
    # a first run fetches the list and caches it (no pallet passes)
    async with (
        app_client(timescale_url) as client,
        LlrpReaderSimulator(scene_of(), SimulatorConfig(port=0, epoch=EPOCH)) as sim,
        Running(agent_config(tmp_path, gateway.token, sim.port), client) as agent,
    ):
        await eventually(lambda: agent.door_feed is not None and agent.door_feed.origin == "cloud")
        feed = agent.door_feed
        assert feed is not None
        assert feed.etag is not None
        assert await feed.poll_once() == "unchanged"  # If-None-Match: a 304
    scene = scene_of((QUARANTINED, 0.5))
    offline = httpx.AsyncClient(transport=httpx.MockTransport(unreachable))
    async with (
        offline,
        LlrpReaderSimulator(scene, SimulatorConfig(port=0, speed=2.0, epoch=EPOCH)) as sim,
        Running(agent_config(tmp_path, gateway.token, sim.port), offline) as agent,
    ):
        assert agent.door_feed is not None
        assert agent.door_feed.origin == "cache"
        await eventually(lambda: KEY in agent.snapshot().alarms)
        assert "lot quarantined" in agent.snapshot().alarms[KEY]
        assert agent.door_feed.origin == "cache"  # every fetch failed; the cache stayed
