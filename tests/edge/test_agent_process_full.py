"""A real ``coldtrace edge run`` process stopped (SIGTERM, or ``kill -9``) while its outbox is
full and its cloud is down.

Before: the pump's shielded append waited for room forever, so SIGTERM never ended (a second one
did nothing) and the container runtime had to SIGKILL it. Now SIGTERM ends within
``stop_grace + shutdown_flush`` with exit 0, a second signal forces exit 3 at once, and nothing
is lost: what did not fit stayed unacknowledged in the broker session and arrives after the
restart (counted here, reading by reading).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from coldtrace.devservices import free_port
from edge.outbox import SqliteOutbox, decode_all
from protocols.records import Reading
from tests.edge.test_agent_process import (
    health,
    paced_publish,
    readings_in_outbox,
    start,
    write_config,
)
from tests.support.temperature_sources import index_of, json_reading

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.timeout(120)]

N = 1500


def full_config(tmp_path: Path, mqtt_url: str, prefix: str, port: int, **outbox: Any) -> Path:
    path = write_config(tmp_path, mqtt_url, prefix, port)
    config = yaml.safe_load(path.read_text())
    config["outbox"] |= {"max_records": 1000, "watch_interval": 0.1, **outbox}
    config["supervision"] = {"shutdown_flush": 0.5, "stop_grace": 2}
    path.write_text(yaml.safe_dump(config))
    return path


async def wait_for_health(port: int) -> None:
    """Up to 30 s for the agent's health endpoint to answer."""
    for _ in range(600):
        if await health(port) is not None:
            return
        await asyncio.sleep(0.05)


async def wait_until_full(port: int) -> None:
    for _ in range(600):
        body = await health(port)
        if body is not None and "outbox/full" in body["alarms"]:  # type: ignore[operator]
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the outbox never filled")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "kill-9"])
async def test_a_stop_with_the_outbox_full_loses_nothing(
    tmp_path: Path, mqtt_url: str, sig: signal.Signals
) -> None:
    prefix = f"full-{uuid.uuid4().hex[:8]}"
    port = free_port()
    config = full_config(tmp_path, mqtt_url, prefix, port)
    log = tmp_path / "agent.log"
    messages = [(f"{prefix}/site-a/readings", json_reading(i)) for i in range(N)]
    first = start(config, log)
    try:
        await wait_for_health(port)
        await asyncio.to_thread(paced_publish, mqtt_url, messages)
        await wait_until_full(port)
        began = time.monotonic()
        os.kill(first.pid, sig)
        code = await asyncio.to_thread(first.wait, 30)
        took = time.monotonic() - began
    finally:
        if first.poll() is None:
            first.kill()
    if sig is signal.SIGTERM:
        assert code == 0, await asyncio.to_thread(log.read_text)
        assert took < 2 + 0.5 + 6, took  # stop_grace + shutdown_flush + a loaded process exit
    else:
        assert code == -signal.SIGKILL
    kept = await readings_in_outbox(tmp_path)
    assert 900 <= kept < N

    # A bigger outbox: the broker re-delivers everything that was not committed.
    config = full_config(tmp_path, mqtt_url, prefix, port, max_records=10_000)
    second = start(config, log)
    try:
        for _ in range(600):
            if await readings_in_outbox(tmp_path) >= N:
                break
            await asyncio.sleep(0.05)
        os.kill(second.pid, signal.SIGTERM)
        assert await asyncio.to_thread(second.wait, 30) == 0
    finally:
        if second.poll() is None:
            second.kill()
    async with await SqliteOutbox.open(tmp_path / "outbox.db") as outbox:
        rows = (await outbox.peek(1_000_000, 1 << 40)).records
    readings = [r for r in decode_all(rows) if isinstance(r, Reading)]
    counts = Counter(index_of(r) for r in readings)
    assert sorted(counts) == list(range(N))  # every reading, none lost
    assert set(counts.values()) == {1}  # and each once (device time identifies a redelivery)


async def test_a_second_sigterm_forces_the_stop(tmp_path: Path, mqtt_url: str) -> None:
    prefix = f"force-{uuid.uuid4().hex[:8]}"
    port = free_port()
    config = full_config(tmp_path, mqtt_url, prefix, port)
    raw = yaml.safe_load(config.read_text())
    raw["supervision"] = {"shutdown_flush": 30, "stop_grace": 60}  # a long graceful stop
    config.write_text(yaml.safe_dump(raw))
    log = tmp_path / "agent.log"
    messages = [(f"{prefix}/site-a/readings", json_reading(i)) for i in range(N)]
    proc = start(config, log)
    try:
        await wait_for_health(port)
        await asyncio.to_thread(paced_publish, mqtt_url, messages)
        await wait_until_full(port)
        os.kill(proc.pid, signal.SIGTERM)
        await asyncio.sleep(0.5)
        assert proc.poll() is None  # still inside its (long) grace
        began = time.monotonic()
        os.kill(proc.pid, signal.SIGTERM)
        code = await asyncio.to_thread(proc.wait, 30)
        took = time.monotonic() - began
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 3, await asyncio.to_thread(log.read_text)
    assert took < 10, took  # not the 60 s grace
    assert "forcing the stop" in await asyncio.to_thread(log.read_text)
    async with await SqliteOutbox.open(tmp_path / "outbox.db") as outbox:
        rows = (await outbox.peek(1_000_000, 1 << 40)).records
    assert [r.seq for r in rows] == list(range(1, len(rows) + 1))  # the file is intact
