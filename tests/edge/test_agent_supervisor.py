"""The supervisor: pumps, restarts, back-pressure, health and metrics, clean stop.

Sources here are scripted implementations of the source contract (``edge.sources.base``), so
each failure mode is exact; the cloud is the ``httpx.MockTransport`` fake. The agent runs on the
real clock with small intervals.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx

from edge.agent import Agent, SourceSpec, run_agent
from edge.config import EdgeConfig
from edge.sources.base import PermanentSourceError, TransientSourceError
from protocols.records import Reading, Record
from tests.edge.conftest import TOKEN, FakeCloud, reading
from tests.support.waiting import poll_until


class ScriptedSource:
    """Yields its script's tuples; an exception in the script is raised at that point.

    ``resumed`` counts tuples the consumer came back for: by the source contract, that is
    what the source may acknowledge to its device.
    """

    def __init__(self, name: str, script: list[tuple[Record, ...] | Exception], hold: bool) -> None:
        self._name = name
        self._script = script
        self._hold = hold
        self.resumed = 0
        self.exits = 0

    @property
    def name(self) -> str:
        return self._name

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.exits += 1

    def __aiter__(self) -> AsyncIterator[tuple[Record, ...]]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[tuple[Record, ...]]:
        while self._script:
            item = self._script.pop(0)
            if isinstance(item, Exception):
                raise item
            yield item
            self.resumed += 1
        if self._hold:
            await asyncio.Event().wait()  # a live device: nothing more for now


class Lives:
    """Builds a fresh ScriptedSource per (re)start, each with the next script."""

    def __init__(self, name: str, *scripts: list[tuple[Record, ...] | Exception]) -> None:
        self.name = name
        self.scripts = list(scripts)
        self.built: list[ScriptedSource] = []

    def __call__(self) -> ScriptedSource:
        script = self.scripts.pop(0) if self.scripts else []
        source = ScriptedSource(self.name, script, hold=not self.scripts)
        self.built.append(source)
        return source

    def spec(self) -> SourceSpec:
        return SourceSpec(self.name, self)


def edge_config(tmp_path: Path, **changes: Any) -> EdgeConfig:
    data: dict[str, Any] = {
        "gateway_id": "gw-1",
        "cloud": {
            "cloud_url": "https://cloud.example",
            "token": TOKEN,
            "linger": 0.01,
            "backoff_initial": 0.01,
            "backoff_max": 0.05,
        },
        "outbox": {"path": str(tmp_path / "outbox.db"), "watch_interval": 0.01},
        "health": {"port": 0},
        "clock": {"check_interval": 0.05},
        "supervision": {"restart_initial": 0.01, "restart_max": 0.05, "shutdown_flush": 2},
    }
    for key, value in changes.items():
        data[key] = data.get(key, {}) | value if isinstance(value, dict) else value
    return EdgeConfig.model_validate(data)


async def eventually(check: Callable[[], Any], seconds: float = 10) -> None:
    """Polls ``check`` (the agent runs on the real clock) for at most ``seconds``."""
    await poll_until(check, seconds=seconds, step=0.01)


class Running:
    """An agent running in a task, stopped (and awaited) on exit."""

    def __init__(self, config: EdgeConfig, specs: list[SourceSpec], cloud: FakeCloud) -> None:
        self.config, self.specs, self.cloud = config, specs, cloud
        self.stop = asyncio.Event()
        self.agent: Agent | None = None

    async def __aenter__(self) -> Running:
        def started(agent: Agent) -> None:
            self.agent = agent

        self.client = self.cloud.client()
        self.task = asyncio.create_task(
            run_agent(self.config, self.stop, self.specs, client=self.client, started=started)
        )
        await eventually(lambda: self.agent is not None and self.agent.ready.is_set())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, 20)
        await self.client.aclose()

    def snapshot_source_state(self, name: str) -> str:
        assert self.agent is not None
        return next(s.state for s in self.agent.snapshot().sources if s.name == name)

    def unreachable(self) -> float:
        assert self.agent is not None
        return self.agent.snapshot().unreachable_seconds

    def alarms(self) -> dict[str, str]:
        assert self.agent is not None
        return self.agent.snapshot().alarms

    async def get(self, path: str) -> httpx.Response:
        assert self.agent is not None
        assert self.agent.health_server is not None
        port = self.agent.health_server.port
        async with httpx.AsyncClient() as client:
            return await client.get(f"http://127.0.0.1:{port}{path}")


def tuples(start: int, stop: int, sensor: str = "fridge-1/t") -> list[tuple[Record, ...]]:
    return [(reading(i, sensor),) for i in range(start, stop)]


def stored_readings(cloud: FakeCloud, sensor: str) -> list[Record]:
    return [
        item.record
        for item in cloud.stored
        if isinstance(item.record, Reading) and item.record.sensor_id == sensor
    ]


async def test_records_flow_from_sources_to_the_cloud_in_order(tmp_path: Path) -> None:
    cloud = FakeCloud()
    a = Lives("a", [*tuples(0, 50, "a/t")])
    b = Lives("b", [*tuples(0, 30, "b/t")])
    async with Running(edge_config(tmp_path), [a.spec(), b.spec()], cloud) as run:
        await eventually(lambda: len(cloud.stored) >= 80)
        health = await run.get("/healthz")
        metrics = (await run.get("/metrics")).text
    assert stored_readings(cloud, "a/t") == [reading(i, "a/t") for i in range(50)]
    assert stored_readings(cloud, "b/t") == [reading(i, "b/t") for i in range(30)]
    assert cloud.seqs() == list(range(1, len(cloud.stored) + 1))
    assert a.built[0].resumed == 50
    assert health.status_code == 200
    body = health.json()
    assert body["status"] == "ok"
    assert body["sources"]["a"]["records"] == 50
    assert body["sources"]["b"]["state"] == "running"
    assert 'coldtrace_edge_source_records_total{source="a"} 50.0' in metrics
    assert "coldtrace_edge_outbox_records 0.0" in metrics
    assert "coldtrace_edge_uplink_last_success_timestamp_seconds" in metrics
    assert a.built[0].exits == 1  # stopped through its context manager


async def test_a_failing_source_restarts_without_touching_the_other(tmp_path: Path) -> None:
    cloud = FakeCloud()
    flaky = Lives(
        "flaky",
        [*tuples(0, 3, "f/t"), TransientSourceError("reader went away")],
        [RuntimeError("bug in the adapter")],
        [*tuples(3, 6, "f/t")],
    )
    steady = Lives("steady", [*tuples(0, 20, "s/t")])
    async with Running(edge_config(tmp_path), [flaky.spec(), steady.spec()], cloud) as run:
        await eventually(lambda: len(stored_readings(cloud, "f/t")) == 6)
        await eventually(lambda: len(stored_readings(cloud, "s/t")) == 20)
        body = (await run.get("/healthz")).json()
    assert stored_readings(cloud, "f/t") == [reading(i, "f/t") for i in range(6)]
    assert body["sources"]["flaky"]["restarts"] == 2
    assert body["sources"]["flaky"]["errors"] == 2
    assert body["sources"]["steady"]["restarts"] == 0
    assert len(steady.built) == 1
    assert all(source.exits == 1 for source in flaky.built)


async def test_a_permanent_failure_stops_only_that_source_and_alarms(tmp_path: Path) -> None:
    cloud = FakeCloud()
    bad = Lives("bad", [PermanentSourceError("wrong password")], [*tuples(0, 1, "x/t")])
    good = Lives("good", [*tuples(0, 5, "g/t")])
    async with Running(edge_config(tmp_path), [bad.spec(), good.spec()], cloud) as run:
        await eventually(lambda: len(stored_readings(cloud, "g/t")) == 5)
        await eventually(lambda: any(getattr(i.record, "device_type", "") for i in cloud.stored))
        body = (await run.get("/healthz")).json()
    assert len(bad.built) == 1  # never restarted
    assert body["status"] == "degraded"
    assert body["sources"]["bad"]["state"] == "failed"
    assert "wrong password" in body["alarms"]["source/bad"]
    statuses = [i.record for i in cloud.stored if getattr(i.record, "kind", "") == "device_status"]
    assert any("wrong password" in getattr(s, "detail", "") for s in statuses)


async def test_full_outbox_stops_resuming_the_source_until_the_cloud_drains(
    tmp_path: Path,
) -> None:
    cloud = FakeCloud()
    cloud.script = [lambda r: httpx.Response(503, json={"error": "down"})] * 100_000
    script: list[tuple[Record, ...] | Exception] = [
        tuple(reading(i * 10 + j) for j in range(10)) for i in range(300)
    ]
    source = Lives("s", script)
    config = edge_config(tmp_path, outbox={"max_records": 1000})
    async with Running(config, [source.spec()], cloud) as run:
        assert run.agent is not None
        agent = run.agent
        await eventually(lambda: agent.snapshot().outbox.full)
        resumed = source.built[0].resumed
        await asyncio.sleep(0.2)
        assert source.built[0].resumed == resumed  # back-pressure: the source waits
        committed = agent.snapshot().sources[0].records
        assert resumed * 10 <= committed <= 1000  # never resumed past what is on disk
        assert "outbox/high_water" in agent.snapshot().alarms
        cloud.script.clear()  # the cloud comes back
        await eventually(lambda: len(stored_readings(cloud, "fridge-1/t")) == 3000)
    assert stored_readings(cloud, "fridge-1/t") == [reading(i) for i in range(3000)]


async def test_outbox_filling_fast_alarms_below_high_water(tmp_path: Path) -> None:
    cloud = FakeCloud()
    cloud.script = [lambda r: httpx.Response(503, json={"error": "down"})] * 100_000
    source = Lives("s", [tuple(reading(i * 10 + j) for j in range(10)) for i in range(300)])
    config = edge_config(
        tmp_path, outbox={"max_records": 100_000, "filling_alarm": 3600, "filling_min_ratio": 0.02}
    )
    async with Running(config, [source.spec()], cloud) as run:
        assert run.agent is not None
        agent = run.agent
        await eventually(lambda: "outbox/high_water" in agent.snapshot().alarms)
        message = agent.snapshot().alarms["outbox/high_water"]
        assert agent.snapshot().outbox.fill_ratio < 0.8  # not high water: the time to full
        assert "below high water, but full within the 1 h 0 min alarm threshold" in message
        assert "full in about" in message
        cloud.script.clear()  # the cloud comes back and drains it: the alarm clears
        await eventually(lambda: "outbox/high_water" not in agent.snapshot().alarms)


async def test_stop_flushes_committed_records_and_closes(tmp_path: Path) -> None:
    cloud = FakeCloud()
    cloud.script = [lambda r: httpx.Response(503, json={"error": "down"})] * 3
    source = Lives("s", [*tuples(0, 10)])
    config = edge_config(tmp_path, cloud={"backoff_initial": 0.2, "backoff_max": 0.2})
    async with Running(config, [source.spec()], cloud) as run:
        await eventually(lambda: source.built[0].resumed == 10)
        assert run.agent is not None
        assert run.agent.snapshot().outbox.records >= 10
    # the stop happened while the uplink was backing off: the flush delivered the rest
    assert stored_readings(cloud, "fridge-1/t") == [reading(i) for i in range(10)]
    assert source.built[0].exits == 1


async def test_stop_keeps_what_the_cloud_did_not_take(tmp_path: Path) -> None:
    from edge.outbox import SqliteOutbox, decode_all

    cloud = FakeCloud()
    cloud.script = [lambda r: httpx.Response(503, json={"error": "down"})] * 10_000
    source = Lives("s", [*tuples(0, 10)])
    config = edge_config(tmp_path, supervision={"shutdown_flush": 0.1})
    async with Running(config, [source.spec()], cloud):
        await eventually(lambda: source.built[0].resumed == 10)
    async with await SqliteOutbox.open(tmp_path / "outbox.db") as outbox:
        rows = (await outbox.peek(1000, 1 << 20)).records
    kept = [r for r in decode_all(rows) if isinstance(r, Reading)]
    assert kept == [reading(i) for i in range(10)]
    assert cloud.stored == []


async def test_healthz_and_metrics_answer_plain_http(tmp_path: Path) -> None:
    cloud = FakeCloud()
    async with Running(edge_config(tmp_path), [], cloud) as run:
        assert (await run.get("/nope")).status_code == 404
        assert run.agent is not None
        assert run.agent.health_server is not None
        reader, writer = await asyncio.open_connection("127.0.0.1", run.agent.health_server.port)
        writer.write(b"POST /healthz HTTP/1.1\r\n\r\n")
        answer = await reader.read()
        writer.close()
        await writer.wait_closed()
        assert answer.startswith(b"HTTP/1.1 405")
        body = json.loads((await run.get("/healthz")).content)
        assert body["outbox"]["records"] == 0
        assert body["gateway_id"] == "gw-1"
