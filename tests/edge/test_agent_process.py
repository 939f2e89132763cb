"""A real ``coldtrace edge run`` process: SIGTERM mid-stream loses nothing.

Loggers publish through Mosquitto (QoS 1, persistent session) while the agent runs with its
cloud unreachable, so everything stays in the outbox file. The agent is stopped with SIGTERM in
the middle of the stream, started again on the same outbox and broker session, and stopped
again; the outbox then holds every published reading, numbered without a gap. Readings are
delivered at least once: the MQTT source may lose the PUBACKs of the last messages it had
acknowledged before it stopped (seen with Mosquitto), and the broker re-sends those.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import uuid
from collections import Counter
from pathlib import Path

import httpx
import pytest
import yaml

from coldtrace.devservices import REPO_ROOT, free_port
from edge.outbox import SqliteOutbox, decode_all
from protocols.records import Reading
from tests.support.temperature_sources import broker_address, index_of, json_reading

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.timeout(120)]

N = 600


def write_config(tmp_path: Path, mqtt_url: str, prefix: str, health_port: int) -> Path:
    config = {
        "gateway_id": "gw-sigterm",
        "cloud": {
            "cloud_url": f"http://127.0.0.1:{free_port()}",
            "allow_insecure_http": True,
            "token": "t",
            "linger": 0.05,
        },
        "outbox": {"path": str(tmp_path / "outbox.db")},
        "health": {"port": health_port},
        "supervision": {"shutdown_flush": 0.5, "stop_grace": 5},
        "mqtt": [
            {
                "name": "broker-1",
                "broker_url": mqtt_url,
                "client_id": f"ct-sigterm-{prefix}",
                "backoff_initial": 0.05,
                "backoff_max": 0.4,
                "decoders": [{"topic": f"{prefix}/{{site}}/readings", "format": "coldtrace-json"}],
            }
        ],
    }
    path = tmp_path / "edge.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def start(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "coldtrace", "edge", "run", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=REPO_ROOT,
        )


async def health(port: int) -> dict[str, object] | None:
    try:
        async with httpx.AsyncClient(timeout=1) as client:
            answer = await client.get(f"http://127.0.0.1:{port}/healthz")
    except httpx.TransportError:
        return None
    body: dict[str, object] = answer.json()
    return body


async def committed(port: int) -> int:
    body = await health(port)
    if body is None:
        return -1
    sources = body["sources"]
    assert isinstance(sources, dict)
    return int(sources["mqtt:broker-1"]["records"])


async def wait_for(port: int, at_least: int, seconds: float = 30) -> None:
    for _ in range(int(seconds / 0.05)):
        if await committed(port) >= at_least:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the agent did not commit {at_least} records in {seconds} s")


def paced_publish(mqtt_url: str, messages: list[tuple[str, str]]) -> None:
    """Publishes at QoS 1 in bursts of 20 every 20 ms (about a second in all), so the stream is
    still flowing when SIGTERM arrives; returns once the broker acknowledged every message."""
    import time

    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    host, port = broker_address(mqtt_url)
    client = paho.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=f"test-paced-{uuid.uuid4().hex[:8]}",
        protocol=paho.MQTTv5,
    )
    client.connect(host, port)
    client.loop_start()
    try:
        for start_at in range(0, len(messages), 20):
            infos = [client.publish(t, p, qos=1) for t, p in messages[start_at : start_at + 20]]
            for info in infos:
                info.wait_for_publish(timeout=10)
                assert info.is_published()
            time.sleep(0.02)
    finally:
        client.disconnect()
        client.loop_stop()


async def terminate(proc: subprocess.Popen[bytes], log: Path) -> None:
    os.kill(proc.pid, signal.SIGTERM)
    code = await asyncio.to_thread(proc.wait, 30)
    assert code == 0, await asyncio.to_thread(log.read_text)


async def test_sigterm_mid_stream_then_restart_keeps_every_reading(
    tmp_path: Path, mqtt_url: str
) -> None:
    prefix = f"sig-{uuid.uuid4().hex[:8]}"
    port = free_port()
    config = write_config(tmp_path, mqtt_url, prefix, port)
    log = tmp_path / "agent.log"
    messages = [(f"{prefix}/site-a/readings", json_reading(i)) for i in range(N)]

    first = start(config, log)
    try:
        await wait_for(port, 1)  # the broker status: the source is subscribed
        # The first half flows while SIGTERM arrives; the second half is published only after
        # the stop, so it must wait in the broker session whatever the machine's speed.
        publisher = threading.Thread(target=paced_publish, args=(mqtt_url, messages[: N // 2]))
        publisher.start()
        await wait_for(port, N // 4)
        await terminate(first, log)
        after_first = await readings_in_outbox(tmp_path)
    finally:
        if first.poll() is None:
            first.kill()
    await asyncio.to_thread(publisher.join, 60)
    await asyncio.to_thread(paced_publish, mqtt_url, messages[N // 2 :])
    assert N // 4 <= after_first < N
    assert "stopped;" in await asyncio.to_thread(log.read_text)

    second = start(config, log)
    try:
        await wait_for(port, 0)
        for _ in range(600):
            if await readings_in_outbox(tmp_path) >= N:
                break
            await asyncio.sleep(0.05)
        await terminate(second, log)
    finally:
        if second.poll() is None:
            second.kill()

    async with await SqliteOutbox.open(tmp_path / "outbox.db") as outbox:
        rows = (await outbox.peek(1_000_000, 1 << 40)).records
        stats = outbox.stats()
    assert [r.seq for r in rows] == list(range(1, stats.last_seq + 1))
    readings = [r for r in decode_all(rows) if isinstance(r, Reading)]
    counts = Counter(index_of(r) for r in readings)
    assert sorted(counts) == list(range(N))  # nothing lost
    # At-least-once across the restart: a reading committed just before SIGTERM whose PUBACK did
    # not reach the broker is delivered again. Those can only be the first run's last ones.
    twice = sorted(i for i, n in counts.items() if n > 1)
    assert all(n <= 2 for n in counts.values())
    assert all(after_first - 100 <= i < after_first for i in twice), twice


def _count_readings(path: Path) -> int:
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            row = conn.execute("SELECT count(*) FROM records WHERE kind = 'reading'").fetchone()
            return int(row[0])
    except sqlite3.Error:
        return 0


async def readings_in_outbox(tmp_path: Path) -> int:
    """Readings committed to the outbox file, read while the agent runs (WAL allows readers)."""
    return await asyncio.to_thread(_count_readings, tmp_path / "outbox.db")
