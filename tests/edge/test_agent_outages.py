"""The agent through a full outbox, a dead cloud, a poison message and a damaged file.

Sources here are ``Device``s: like a broker or a reader, a device re-sends every message its
consumer did not come back for (the acknowledgement contract of ``edge.sources.base``), so a
source closed with a tuple in hand loses nothing. The cloud is the ``httpx.MockTransport`` fake.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx
import pytest

from edge.agent import SourceSpec
from edge.config import EdgeConfig
from edge.outbox import SqliteOutbox, decode_all
from protocols.records import DeviceState, DeviceStatus, Reading, Record, TagRead
from tests.edge.conftest import T0, FakeCloud, reading
from tests.edge.test_agent_supervisor import Running, edge_config, eventually, stored_readings

DOWN = [lambda _r: httpx.Response(503, json={"error": "down"})] * 1_000_000


class Device:
    """Messages a device holds until acknowledged; every source life starts from the first."""

    def __init__(self, name: str, messages: list[tuple[Record, ...]], poison: int = -1) -> None:
        self.name = name
        self.pending = list(messages)
        self.poison = poison
        """Index of a message the adapter crashes on, every time it is delivered."""
        self.lives = 0
        self.acked = 0

    def spec(self) -> SourceSpec:
        return SourceSpec(self.name, lambda: _Life(self))


class _Life:
    def __init__(self, device: Device) -> None:
        self._device = device

    @property
    def name(self) -> str:
        return self._device.name

    async def __aenter__(self) -> Self:
        self._device.lives += 1
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    def __aiter__(self) -> AsyncIterator[tuple[Record, ...]]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[tuple[Record, ...]]:
        device = self._device
        yield (DeviceStatus(device_id=device.name, device_type="mqtt_broker",
                            state=DeviceState.ONLINE, detail="connected", time=T0),)  # fmt: skip
        while device.pending:
            if device.acked == device.poison:
                raise RuntimeError("the adapter cannot parse this message")
            yield device.pending[0]
            device.pending.pop(0)  # resumed: the consumer committed it, acknowledge
            device.acked += 1
        await asyncio.Event().wait()


def breach(i: int) -> Reading:
    t = T0 + timedelta(hours=1, seconds=i)
    return Reading(sensor_id="fridge-1/t", time=t, value=20.0, received_at=t + timedelta(seconds=1))


def full_outbox_config(tmp_path: Path, **changes: object) -> EdgeConfig:
    return edge_config(
        tmp_path,
        outbox={"max_records": 1000, "watch_interval": 0.02},
        alarms={
            "cloud_unreachable_after": 0,
            "on_delay": 0,
            "sensors": {"fridge-1/t": {"low": 2.0, "high": 8.0}},
        },
        **changes,
    )


def filler(n: int) -> list[tuple[Record, ...]]:
    return [tuple(reading(i * 10 + j, "filler/t") for j in range(10)) for i in range(n)]


def breaches(start: int) -> tuple[Record, ...]:
    """Twenty breach readings: after 980 filler readings they cannot fit into 1000 records."""
    return tuple(breach(start + i) for i in range(20))


async def test_a_breach_raises_its_local_alarm_while_the_outbox_is_full(tmp_path: Path) -> None:
    """Before: readings reached the alarms only after their commit, so with the outbox full a
    fridge at 20 degC raised nothing. Now the tuple in hand is judged before its commit."""
    cloud = FakeCloud()
    cloud.script = list(DOWN)
    device = Device("loggers", [*filler(98), breaches(0)])
    config = full_outbox_config(tmp_path, supervision={"stop_grace": 0.5, "shutdown_flush": 0.1})
    async with Running(config, [device.spec()], cloud) as run:
        assert run.agent is not None
        agent = run.agent
        await eventually(lambda: "outbox/full" in agent.snapshot().alarms)
        await eventually(lambda: "sensor/fridge-1/t" in agent.snapshot().alarms)
        assert device.pending == [breaches(0)]  # not acknowledged: it is not on disk
        assert "sources are paused" in agent.snapshot().alarms["outbox/full"]


async def test_stop_ends_within_its_grace_with_the_outbox_full_and_the_cloud_down(
    tmp_path: Path,
) -> None:
    """Before: the shielded append of the blocked pump (and of the alarm writer) was waited for
    without a bound, so SIGTERM never ended."""
    cloud = FakeCloud()
    cloud.script = list(DOWN)
    device = Device("loggers", [*filler(98), breaches(0), breaches(20)])
    config = full_outbox_config(tmp_path, supervision={"stop_grace": 0.5, "shutdown_flush": 0.3})
    run = Running(config, [device.spec()], cloud)
    async with run:
        assert run.agent is not None
        agent = run.agent
        await eventually(lambda: agent.snapshot().outbox.full)
        await eventually(lambda: "sensor/fridge-1/t" in agent.snapshot().alarms)
        started = time.monotonic()
    elapsed = time.monotonic() - started
    assert elapsed < 0.5 + 0.3 + 4, elapsed  # grace + flush, with room for a loaded machine
    assert device.pending[0] == breaches(0)  # what was not committed is still on the device
    async with await SqliteOutbox.open(tmp_path / "outbox.db") as outbox:
        rows = (await outbox.peek(10_000, 1 << 30)).records
    readings = [r for r in decode_all(rows) if isinstance(r, Reading)]
    assert readings == [reading(i, "filler/t") for i in range(980)]


async def test_a_reconfiguration_waiting_for_room_does_not_hold_the_stop(tmp_path: Path) -> None:
    """A new door list closes the open passages and commits them while holding the lock the
    stop waits for. Before: with the outbox full that commit waited for room forever, and so
    did SIGTERM."""
    cloud = FakeCloud()
    cloud.script = list(DOWN)
    read = TagRead(reader_id="dock-reader-1", antenna=1, epc="30340242201d8c4000000001",
                   rssi=-50.0, first_seen=T0, last_seen=T0, count=5, received_at=T0)  # fmt: skip
    device = Device("loggers", [(read,), *filler(100)])
    door = {"door_id": "dock-1", "reader_id": "dock-reader-1", "outside_antennas": [1],
            "inside_antennas": [2], "quiet_gap": 3600, "max_dwell": 7200}  # fmt: skip
    llrp = [{"reader_id": "dock-reader-1", "host": "127.0.0.1"}]
    config = full_outbox_config(
        tmp_path, llrp=llrp, doors=[door],
        supervision={"stop_grace": 0.5, "shutdown_flush": 0.3},
    )  # fmt: skip
    changed = full_outbox_config(
        tmp_path, llrp=llrp, doors=[door | {"quiet_gap": 1800}],
        supervision={"stop_grace": 0.5, "shutdown_flush": 0.3},
    )  # fmt: skip
    run = Running(config, [device.spec()], cloud)
    async with run:
        assert run.agent is not None
        agent = run.agent
        await eventually(lambda: agent.snapshot().outbox.full)
        reconfiguring = asyncio.create_task(agent.reconfigure(changed, [device.spec()]))
        await asyncio.sleep(0.3)
        assert not reconfiguring.done()  # the closed passage waits for room
        started = time.monotonic()
    elapsed = time.monotonic() - started
    assert elapsed < 0.5 + 0.3 + 4, elapsed  # grace + flush, with room for a loaded machine
    assert await asyncio.wait_for(reconfiguring, 1) == []  # no source changed


async def test_overflow_raise_restarts_the_source_when_there_is_room(tmp_path: Path) -> None:
    """Before: OutboxFullError ended the agent (exit 1), and every restart crashed again."""
    cloud = FakeCloud()
    cloud.script = list(DOWN)
    device = Device("loggers", filler(300))
    config = edge_config(
        tmp_path,
        outbox={"max_records": 1000, "watch_interval": 0.02, "overflow": "raise"},
        supervision={"restart_initial": 0.01, "restart_max": 0.1},
    )
    async with Running(config, [device.spec()], cloud) as run:
        assert run.agent is not None
        agent = run.agent
        await eventually(lambda: "outbox/full" in agent.snapshot().alarms)
        await eventually(lambda: run.snapshot_source_state("loggers") == "backoff")
        await asyncio.sleep(0.2)
        assert not run.task.done()  # the agent runs on, the source waits for room
        assert device.lives == 1
        refused = device.pending[0]  # closed with this tuple in hand, not acknowledged
        cloud.script.clear()  # the cloud comes back
        await eventually(lambda: len(stored_readings(cloud, "filler/t")) == 3000)
        assert device.lives == 2  # restarted once there was room
        assert refused[0] in stored_readings(cloud, "filler/t")
    got = stored_readings(cloud, "filler/t")
    assert got == [reading(i, "filler/t") for i in range(3000)]  # each once, in order


async def test_a_source_crashing_on_every_redelivered_message_backs_off(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Before: each life delivered its connect status first, which reset the backoff, so the
    source restarted every restart_initial with a traceback each time."""
    cloud = FakeCloud()
    device = Device("loggers", filler(3), poison=1)
    config = edge_config(tmp_path, supervision={"restart_initial": 0.02, "restart_max": 10})
    caplog.set_level(logging.WARNING, logger="edge.agent")
    async with Running(config, [device.spec()], cloud):
        await asyncio.sleep(1.5)
    # 0.02, 0.04, 0.08, ... (equal jitter): at most about 8 lives in 1.5 s, not 75
    assert 3 <= device.lives <= 9, device.lives
    tracebacks = [r for r in caplog.records if r.exc_info and "crashed" in r.getMessage()]
    assert len(tracebacks) == 1  # the same crash again is one line
    assert device.acked == 1
    assert len(stored_readings(cloud, "filler/t")) == 10


async def test_a_damaged_outbox_is_moved_aside_and_a_fresh_one_starts(tmp_path: Path) -> None:
    """Before: a crash loop with no sources and no alarms."""
    path = tmp_path / "outbox.db"
    path.write_bytes(b"this is not an SQLite database" * 200)
    cloud = FakeCloud()
    device = Device("loggers", filler(2))
    async with Running(edge_config(tmp_path), [device.spec()], cloud) as run:
        assert run.agent is not None
        agent = run.agent
        await eventually(lambda: len(stored_readings(cloud, "filler/t")) == 20)
        assert "outbox/corrupt" in agent.snapshot().alarms
        assert "sqlite3 .recover" in agent.snapshot().alarms["outbox/corrupt"]
    aside = await asyncio.to_thread(lambda: list(tmp_path.glob("outbox.db.corrupt-*")))
    assert len(aside) == 1
    assert aside[0].read_bytes().startswith(b"this is not an SQLite database")
    statuses = [i.record for i in cloud.stored if isinstance(i.record, DeviceStatus)]
    assert any("outbox/corrupt" in s.detail for s in statuses)  # the cloud learns it too


async def test_health_listens_on_loopback_needs_its_token_and_counts_duplicates(
    tmp_path: Path,
) -> None:
    assert (
        EdgeConfig.model_validate(
            {"gateway_id": "g", "cloud": {"cloud_url": "https://c", "token": "t"}}
        ).health.host
        == "127.0.0.1"
    )
    cloud = FakeCloud()
    twice = (reading(1, "dup/t"),)
    device = Device("loggers", [twice, twice, (reading(2, "dup/t"),)])
    config = edge_config(tmp_path, health={"port": 0, "token": "s3cret"})
    async with Running(config, [device.spec()], cloud) as run:
        await eventually(lambda: len(stored_readings(cloud, "dup/t")) == 2)
        assert run.agent is not None
        assert run.agent.health_server is not None
        port = run.agent.health_server.port
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            refused = await client.get("/healthz")
            wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
            auth = {"Authorization": "Bearer s3cret"}
            health = await client.get("/healthz", headers=auth)
            metrics = await client.get("/metrics", headers=auth)
    assert (refused.status_code, wrong.status_code) == (401, 401)
    assert refused.headers["www-authenticate"].startswith("Bearer")
    assert health.status_code == 200
    assert health.json()["outbox"]["duplicates_dropped"] == 1
    assert "coldtrace_edge_outbox_duplicates_dropped_total 1.0" in metrics.text
    assert "coldtrace_edge_outbox_disk_bytes" in metrics.text
