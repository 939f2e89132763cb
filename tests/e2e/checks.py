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


def opcua_differences(
    written: set[Key], stored: set[Key], final_moments: set[Key],
    unseen_by_agent: set[Key] | None = None,
) -> tuple[set[Key], set[Key]]:  # fmt: skip
    """``(invented, lost)``: OPC-UA values the agent stored that the witness never saw, and
    values the witness saw that the agent never stored (from the agent's first value on).

    Two subscriptions of one server can each miss the server's very last notifications (the
    simulator exits between their publish cycles). So values after the last one the witness saw
    of a sensor are beyond its view, not invented; and values the witness saw in the server's
    last second (``final_moments``) after the agent's last stored one are a trailing run, not
    lost. Anything earlier counts, except ``unseen_by_agent`` (an agent's crash window).
    """
    last_witnessed = {s: max(t for s2, t in written if s2 == s) for s, _ in written}
    invented = {(s, t) for s, t in stored - written if t <= last_witnessed.get(s, t)}
    first = {s: min(t for s2, t in stored if s2 == s) for s, _ in stored}
    last_stored = {s: max(t for s2, t in stored if s2 == s) for s, _ in stored}
    # a sensor the agent stored nothing of has lost every value
    missing = {(s, t) for s, t in written - stored if t >= first.get(s, t)}
    trailing = {
        (s, t) for s, t in missing & final_moments if s in last_stored and t > last_stored[s]
    }
    return invented, missing - trailing - (unseen_by_agent or set())
