"""Gateway sources, sensor points, doors, configuration versions and reports, in SQL.

Every function runs inside the caller's transaction. A version is made when the configuration
built from master data differs from the newest stored one: reading the configuration after a
master-data change is what numbers it, under a per-gateway advisory lock so that two readers
cannot both make version n+1.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import TupleRow
from psycopg.types.json import Jsonb

from cloud.gateway_config import InvalidGatewayConfigError, UnknownGatewayError
from cloud.gateway_config.build import (
    RESERVED_SETTINGS,
    SECRET_KEYS,
    SOURCE_KINDS,
    DoorRow,
    LimitRow,
    PointRow,
    SourceRow,
    build_sections,
    digest,
)
from protocols.gateway_config import ConfigReport, GatewayConfigDocument

Conn = AsyncConnection[TupleRow]


@dataclass(frozen=True)
class ConfigStatus:
    """What the cloud offers a gateway and what the gateway last reported."""

    document: GatewayConfigDocument
    digest: str
    applied_version: int | None
    applied_at: datetime | None
    refused_version: int | None
    refused_reason: str | None
    refused_at: datetime | None


async def require_gateway(conn: Conn, gateway_id: str) -> None:
    cur = await conn.execute("SELECT 1 FROM gateways WHERE gateway_id = %s", (gateway_id,))
    if await cur.fetchone() is None:
        raise UnknownGatewayError(f"no gateway {gateway_id!r}")


async def put_source(conn: Conn, gateway_id: str, source: SourceRow) -> SourceRow | None:
    """Creates or replaces a source of a gateway; returns what it replaced."""
    if source.kind not in SOURCE_KINDS:
        raise InvalidGatewayConfigError(f"source kind must be one of {', '.join(SOURCE_KINDS)}")
    reserved = RESERVED_SETTINGS[source.kind] & source.settings.keys()
    if reserved:
        raise InvalidGatewayConfigError(
            f"settings {sorted(reserved)} are filled in from master data, not set by hand"
        )
    secret = SECRET_KEYS & source.settings.keys()
    if secret:
        raise InvalidGatewayConfigError(f"put {sorted(secret)} in credentials, not settings")
    stray = source.credentials.keys() - SECRET_KEYS
    if stray:
        raise InvalidGatewayConfigError(f"credentials hold only {sorted(SECRET_KEYS)}")
    await require_gateway(conn, gateway_id)
    before = await _source(conn, gateway_id, source.name)
    if before is not None and before.kind != source.kind:
        raise InvalidGatewayConfigError(
            f"source {source.name!r} is {before.kind}; delete it before reusing its name"
        )
    await conn.execute(
        "INSERT INTO gateway_sources (gateway_id, name, kind, settings, credentials)"
        " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (gateway_id, name) DO UPDATE SET"
        " settings = EXCLUDED.settings, credentials = EXCLUDED.credentials, updated_at = now()",
        (gateway_id, source.name, source.kind, Jsonb(source.settings), Jsonb(source.credentials)),
    )
    return before


async def _source(conn: Conn, gateway_id: str, name: str) -> SourceRow | None:
    cur = await conn.execute(
        "SELECT name, kind, settings, credentials FROM gateway_sources"
        " WHERE gateway_id = %s AND name = %s FOR UPDATE",
        (gateway_id, name),
    )
    row = await cur.fetchone()
    return SourceRow(*row) if row else None


async def delete_source(conn: Conn, gateway_id: str, name: str) -> SourceRow:
    """Removes a source with its points and doors; returns it."""
    before = await _source(conn, gateway_id, name)
    if before is None:
        raise UnknownGatewayError(f"gateway {gateway_id!r} has no source {name!r}")
    await conn.execute(
        "DELETE FROM gateway_sources WHERE gateway_id = %s AND name = %s", (gateway_id, name)
    )
    return before


async def put_point(conn: Conn, gateway_id: str, point: PointRow) -> PointRow | None:
    """Says where a sensor is read (one place per sensor); returns the place it replaced."""
    source = await _source(conn, gateway_id, point.source_name)
    if source is None:
        raise UnknownGatewayError(f"gateway {gateway_id!r} has no source {point.source_name!r}")
    if source.kind == "llrp":
        raise InvalidGatewayConfigError("an LLRP reader has no sensor points; use doors")
    if source.kind == "opcua" and point.payload:
        raise InvalidGatewayConfigError("an OPC-UA point has no payload decoder")
    cur = await conn.execute(
        "SELECT sensor_id, source_name, address, payload FROM sensor_points"
        " WHERE sensor_id = %s FOR UPDATE",
        (point.sensor_id,),
    )
    row = await cur.fetchone()
    await conn.execute(
        "INSERT INTO sensor_points (sensor_id, gateway_id, source_name, address, payload)"
        " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (sensor_id) DO UPDATE SET"
        " gateway_id = EXCLUDED.gateway_id, source_name = EXCLUDED.source_name,"
        " address = EXCLUDED.address, payload = EXCLUDED.payload, updated_at = now()",
        (point.sensor_id, gateway_id, point.source_name, point.address, Jsonb(point.payload)),
    )
    return PointRow(*row) if row else None


async def delete_point(conn: Conn, sensor_id: str) -> PointRow:
    cur = await conn.execute(
        "DELETE FROM sensor_points WHERE sensor_id = %s"
        " RETURNING sensor_id, source_name, address, payload",
        (sensor_id,),
    )
    row = await cur.fetchone()
    if row is None:
        raise UnknownGatewayError(f"sensor {sensor_id!r} is read by no gateway")
    return PointRow(*row)


async def put_door(conn: Conn, gateway_id: str, door: DoorRow) -> DoorRow | None:
    source = await _source(conn, gateway_id, door.reader_name)
    if source is None or source.kind != "llrp":
        raise UnknownGatewayError(f"gateway {gateway_id!r} has no LLRP reader {door.reader_name!r}")
    cur = await conn.execute(
        "SELECT door_id, reader_name, outside_antennas, inside_antennas, settings"
        " FROM gateway_doors WHERE gateway_id = %s AND door_id = %s FOR UPDATE",
        (gateway_id, door.door_id),
    )
    row = await cur.fetchone()
    await conn.execute(
        "INSERT INTO gateway_doors (gateway_id, door_id, reader_name, outside_antennas,"
        " inside_antennas, settings) VALUES (%s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (gateway_id, door_id) DO UPDATE SET reader_name = EXCLUDED.reader_name,"
        " outside_antennas = EXCLUDED.outside_antennas,"
        " inside_antennas = EXCLUDED.inside_antennas, settings = EXCLUDED.settings",
        (gateway_id, door.door_id, door.reader_name, list(door.outside_antennas),
         list(door.inside_antennas), Jsonb(door.settings)),
    )  # fmt: skip
    return _door(row) if row else None


def _door(row: tuple[Any, ...]) -> DoorRow:
    return DoorRow(row[0], row[1], tuple(row[2]), tuple(row[3]), row[4])


async def _inputs(
    conn: Conn, gateway_id: str
) -> tuple[list[SourceRow], list[PointRow], list[DoorRow], list[LimitRow]]:
    cur = await conn.execute(
        "SELECT name, kind, settings, credentials FROM gateway_sources WHERE gateway_id = %s",
        (gateway_id,),
    )
    sources = [SourceRow(*r) for r in await cur.fetchall()]
    cur = await conn.execute(
        "SELECT sensor_id, source_name, address, payload FROM sensor_points WHERE gateway_id = %s",
        (gateway_id,),
    )
    points = [PointRow(*r) for r in await cur.fetchall()]
    cur = await conn.execute(
        "SELECT door_id, reader_name, outside_antennas, inside_antennas, settings"
        " FROM gateway_doors WHERE gateway_id = %s",
        (gateway_id,),
    )
    doors = [_door(r) for r in await cur.fetchall()]
    # The profile of the location the sensor is mounted at now (as the engine finds it).
    cur = await conn.execute(
        "SELECT p.sensor_id, sp.action_low, sp.action_high, sp.on_delay FROM sensor_points p"
        " LEFT JOIN sensors s ON s.sensor_id = p.sensor_id"
        " LEFT JOIN devices d ON d.device_id = p.sensor_id AND d.device_type = 'sensor'"
        " JOIN locations l ON l.location_id = coalesce(s.location_id, d.location_id)"
        " JOIN storage_profiles sp ON sp.profile_id = l.profile_id WHERE p.gateway_id = %s",
        (gateway_id,),
    )
    limits = [LimitRow(*r) for r in await cur.fetchall()]
    return sources, points, doors, limits


async def current(conn: Conn, gateway_id: str) -> ConfigStatus:
    """The gateway's configuration as master data says now, numbered, and its reports."""
    await require_gateway(conn, gateway_id)
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", ("gateway-config:" + gateway_id,)
    )
    sections = build_sections(gateway_id, *await _inputs(conn, gateway_id))
    made = digest(sections)
    cur = await conn.execute(
        "SELECT version, digest FROM gateway_config_versions WHERE gateway_id = %s"
        " ORDER BY version DESC LIMIT 1",
        (gateway_id,),
    )
    row = await cur.fetchone()
    version = 1 if row is None else int(row[0]) + (row[1] != made)
    if row is None or row[1] != made:
        await conn.execute(
            "INSERT INTO gateway_config_versions (gateway_id, version, digest,"
            " sections_with_credentials) VALUES (%s, %s, %s, %s)",
            (gateway_id, version, made, Jsonb(sections)),
        )
    cur = await conn.execute(
        "SELECT config_applied_version, config_applied_at, config_refused_version,"
        " config_refused_reason, config_refused_at FROM gateways WHERE gateway_id = %s",
        (gateway_id,),
    )
    reported = await cur.fetchone()
    assert reported is not None  # the gateway was found above, in this transaction
    doc = GatewayConfigDocument(gateway_id=gateway_id, version=version, sections=sections)
    return ConfigStatus(doc, made, *reported)


async def record_report(conn: Conn, gateway_id: str, report: ConfigReport) -> None:
    """Keeps what the gateway runs, or the version it refused and why."""
    cur = await conn.execute(
        "SELECT 1 FROM gateway_config_versions WHERE gateway_id = %s AND version = %s",
        (gateway_id, report.version),
    )
    if await cur.fetchone() is None:
        raise UnknownGatewayError(
            f"gateway {gateway_id!r} was never offered version {report.version}"
        )
    if report.applied:
        await conn.execute(
            "UPDATE gateways SET config_applied_version = %s, config_applied_at = now()"
            " WHERE gateway_id = %s",
            (report.version, gateway_id),
        )
    else:
        await conn.execute(
            "UPDATE gateways SET config_refused_version = %s, config_refused_reason = %s,"
            " config_refused_at = now() WHERE gateway_id = %s",
            (report.version, report.reason or "no reason given", gateway_id),
        )
