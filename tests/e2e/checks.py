"""What the end-to-end tests ask the running processes and the database."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import datetime

import httpx
import psycopg

from protocols.records import Reading
from tests.e2e.rig import TemperatureRig
from tests.e2e.witness import Key


async def edge_source_records(health_port: int, source: str) -> int:
    """Records the edge agent committed from ``source`` (its ``/healthz``); -1 if unreachable."""
    try:
        async with httpx.AsyncClient(timeout=1) as client:
            body = (await client.get(f"http://127.0.0.1:{health_port}/healthz")).json()
    except httpx.TransportError:
        return -1
    return int(body["sources"][source]["records"])


async def wait_source_records(
    health_port: int, source: str, at_least: int, within: float = 20.0
) -> None:
    deadline = time.monotonic() + within
    while await edge_source_records(health_port, source) < at_least:
        assert time.monotonic() < deadline, f"{source} committed < {at_least} in {within} s"
        await asyncio.sleep(0.05)


async def first_stored(database_url: str) -> dict[str, datetime]:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cur = await conn.execute("SELECT sensor_id, min(time) FROM readings GROUP BY sensor_id")
        return {str(s): t for s, t in await cur.fetchall()}


async def expected_readings(
    database_url: str, published: Sequence[Reading], opcua: Sequence[Key], rig: TemperatureRig,
    within: float = 20.0,
) -> set[Key]:  # fmt: skip
    """What must be stored: every MQTT reading published, and every OPC-UA value written from
    the first one the edge's subscription delivered (its initial value) on.

    An OPC-UA subscription starts with the node's current value; writes before it are not
    history the source could fetch (no HistoryRead), so the comparison starts there.
    """
    keys = {(r.sensor_id, r.time) for r in published}
    deadline = time.monotonic() + within
    while True:
        first = await first_stored(database_url)
        if all(s in first for s in rig.opcua_units.values()):
            break
        assert time.monotonic() < deadline, f"no OPC-UA reading stored: {first}"
        await asyncio.sleep(0.2)
    keys |= {(s, t) for s, t in opcua if t >= first[s]}
    return keys
