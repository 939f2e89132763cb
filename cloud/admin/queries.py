"""What the admin pages show that the master-data store does not already list."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import TupleRow


@dataclass(frozen=True)
class GatewayInfo:
    gateway_id: str
    site_id: str | None
    disabled: bool
    last_seen: datetime | None
    """The cloud's last contact with it: its last batch, heartbeat or other request."""
    clock_skew: timedelta | None
    """The ``sent_at`` of its last batch or heartbeat minus the cloud's receipt (positive: the
    gateway's clock is ahead)."""
    outbox_pending: int | None
    """None: the gateway does not report its outbox."""
    outbox_oldest_age: timedelta | None
    software_version: str | None
    """None: the gateway has not said (agents before the version was reported)."""


async def gateways(conn: AsyncConnection[TupleRow]) -> list[GatewayInfo]:
    version = await _has_column(conn, "gateways", "software_version")
    contact = await _has_column(conn, "gateways", "last_contact_at")
    seen = "greatest(s.last_received_at, g.last_contact_at)" if contact else "s.last_received_at"
    clock = await _has_column(conn, "gateways", "clock_sent_at")  # batches and heartbeats
    skew = (
        "g.clock_sent_at - g.clock_received_at" if clock else "s.last_sent_at - s.last_received_at"
    )
    cur = await conn.execute(
        f"SELECT g.gateway_id, g.site_id, g.disabled_at IS NOT NULL, {seen},"
        f" {skew}, s.outbox_pending, s.outbox_oldest_age,"
        + (" g.software_version" if version else " NULL::text")
        + " FROM gateways g LEFT JOIN LATERAL (SELECT * FROM gateway_streams gs"
        "  WHERE gs.gateway_id = g.gateway_id AND gs.last_received_at IS NOT NULL"
        "  ORDER BY gs.last_received_at DESC LIMIT 1) s ON true ORDER BY g.gateway_id"
    )
    return [GatewayInfo(*row) for row in await cur.fetchall()]


async def _has_column(conn: AsyncConnection[TupleRow], table: str, column: str) -> bool:
    cur = await conn.execute(
        "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema()"
        " AND table_name = %s AND column_name = %s",
        (table, column),
    )
    return await cur.fetchone() is not None


async def _has_table(conn: AsyncConnection[TupleRow], table: str) -> bool:
    cur = await conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,))
    row = await cur.fetchone()
    return bool(row and row[0])


@dataclass(frozen=True)
class MountEntry:
    sensor_id: str
    valid_from: datetime | None
    location_id: str | None


async def mount_histories(conn: AsyncConnection[TupleRow]) -> dict[str, list[MountEntry]]:
    """Every sensor's mounts, oldest first."""
    cur = await conn.execute(
        "SELECT sensor_id, CASE WHEN isfinite(valid_from) THEN valid_from END, location_id"
        " FROM sensor_mounts ORDER BY sensor_id, valid_from"
    )
    out: dict[str, list[MountEntry]] = {}
    for row in await cur.fetchall():
        entry = MountEntry(*row)
        out.setdefault(entry.sensor_id, []).append(entry)
    return out


LISTED_DEVICES = 500
"""Devices a page lists at most: gateways create device rows by naming new ids, so the lists
below are bounded here, not by what admins registered (as ``/ui/discovery``)."""


async def unmounted_sensors(conn: AsyncConnection[TupleRow]) -> list[tuple[str, datetime | None]]:
    """Sensors that report (the edge named them) but are mounted nowhere, the first
    ``LISTED_DEVICES`` by id."""
    cur = await conn.execute(
        "SELECT d.device_id, d.last_seen_at FROM devices d"
        " LEFT JOIN sensors s ON s.sensor_id = d.device_id"
        " WHERE d.device_type = 'sensor' AND s.location_id IS NULL AND d.location_id IS NULL"
        " ORDER BY d.device_id LIMIT %s",
        (LISTED_DEVICES,),
    )
    return [(str(r[0]), r[1]) for r in await cur.fetchall()]


@dataclass(frozen=True)
class UserInfo:
    name: str
    role: str
    enabled: bool


async def users(conn: AsyncConnection[TupleRow]) -> list[UserInfo]:
    cur = await conn.execute("SELECT name, role, disabled_at IS NULL FROM users ORDER BY name")
    return [UserInfo(str(n), str(r), bool(en)) for n, r, en in await cur.fetchall()]


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    actor: str
    action: str
    subject: str
    reason: str | None
    detail: dict[str, Any]


async def audit_trail(conn: AsyncConnection[TupleRow], limit: int = 200) -> list[AuditEntry]:
    cur = await conn.execute(
        "SELECT at, actor, action, subject, reason, detail FROM audit_log"
        " ORDER BY audit_id DESC LIMIT %s",
        (limit,),
    )
    return [AuditEntry(*row) for row in await cur.fetchall()]


@dataclass(frozen=True)
class ReaderInfo:
    reader_id: str
    gateway_id: str | None
    location_id: str | None
    last_seen: datetime | None
    last_state: str | None


@dataclass(frozen=True)
class DoorInfo:
    gateway_id: str
    door_id: str
    reader: str
    outside_antennas: list[int]
    inside_antennas: list[int]


async def readers(conn: AsyncConnection[TupleRow]) -> list[ReaderInfo]:
    """RFID readers the gateways have reported (the first ``LISTED_DEVICES`` by id)."""
    cur = await conn.execute(
        "SELECT device_id, gateway_id, location_id, last_seen_at, last_state FROM devices"
        " WHERE device_type = 'llrp_reader' ORDER BY device_id LIMIT %s",
        (LISTED_DEVICES,),
    )
    return [ReaderInfo(*row) for row in await cur.fetchall()]


async def doors(conn: AsyncConnection[TupleRow]) -> list[DoorInfo] | None:
    """Dock doors configured for the gateways (None: this cloud keeps no door configuration)."""
    if not await _has_table(conn, "gateway_doors"):
        return None
    cur = await conn.execute(
        "SELECT gateway_id, door_id, reader_name, outside_antennas, inside_antennas"
        " FROM gateway_doors ORDER BY gateway_id, door_id"
    )
    return [DoorInfo(*row) for row in await cur.fetchall()]


@dataclass(frozen=True)
class ReaderSource:
    gateway_id: str
    name: str
    settings: dict[str, Any]


async def reader_sources(conn: AsyncConnection[TupleRow]) -> list[ReaderSource] | None:
    """The LLRP readers each gateway is told to read (None: no gateway configuration here)."""
    if not await _has_table(conn, "gateway_sources"):
        return None
    cur = await conn.execute(
        "SELECT gateway_id, name, settings FROM gateway_sources WHERE kind = 'llrp'"
        " ORDER BY gateway_id, name"
    )
    return [ReaderSource(*row) for row in await cur.fetchall()]


async def passages(conn: AsyncConnection[TupleRow]) -> list[tuple[str, str, int, datetime]]:
    """Per door: the directions seen in its portal passages, how many, and the last one."""
    cur = await conn.execute(
        "SELECT door_id, direction, count(*), max(started_at) FROM portal_passages"
        " GROUP BY door_id, direction ORDER BY door_id, direction"
    )
    return [(str(d), str(x), int(n), t) for d, x, n, t in await cur.fetchall()]
