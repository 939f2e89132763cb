"""Devices that report but are mounted nowhere ("unassigned"), and mounting a reader.

A sensor or an RFID reader appears in ``devices`` when a processed batch names it
(``cloud.processing.devices``). Until it is mounted its readings are stored but judged against
no storage profile, so a fridge probe plugged in and forgotten would watch nothing: the admin
pages list these with a mount action. Sensors are mounted through the master-data mount
(``cloud.masterdata.sensors``); a reader is placed by its ``devices`` row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from cloud.auth.service import audit
from cloud.gateway_config import InvalidGatewayConfigError, UnknownGatewayError
from cloud.masterdata import MasterDataError
from cloud.masterdata.sensors import SensorMount, mount_sensor

KINDS = ("sensor", "llrp_reader")


@dataclass(frozen=True)
class Unassigned:
    device_id: str
    device_type: str
    gateway_id: str | None
    site_id: str | None
    """The site of the gateway that reported it: where it is probably to be mounted."""
    last_seen_at: datetime | None
    last_state: str | None
    read_at: str | None
    """Where the gateway reads it, when a sensor point says so (``source: address``)."""


_UNASSIGNED = """
SELECT d.device_id, d.device_type, d.gateway_id, g.site_id, d.last_seen_at, d.last_state,
       p.source_name || ': ' || p.address
FROM devices d
LEFT JOIN sensors s ON s.sensor_id = d.device_id
LEFT JOIN gateways g ON g.gateway_id = d.gateway_id
LEFT JOIN sensor_points p ON p.sensor_id = d.device_id
WHERE d.device_type = ANY(%(kinds)s) AND coalesce(s.location_id, d.location_id) IS NULL
  AND (%(site)s::text IS NULL OR g.site_id = %(site)s)
ORDER BY d.last_seen_at DESC NULLS LAST, d.device_id
LIMIT %(limit)s
"""


async def list_unassigned(
    conn: AsyncConnection[TupleRow], site_id: str | None = None, limit: int = 500
) -> list[Unassigned]:
    """Sensors and readers that reported and are mounted nowhere, most recently seen first."""
    cur = await conn.execute(_UNASSIGNED, {"kinds": list(KINDS), "site": site_id, "limit": limit})
    return [Unassigned(*row) for row in await cur.fetchall()]


async def device_type(conn: AsyncConnection[TupleRow], device_id: str) -> str:
    cur = await conn.execute("SELECT device_type FROM devices WHERE device_id = %s", (device_id,))
    row = await cur.fetchone()
    if row is None:
        raise UnknownGatewayError(f"no device {device_id!r} has reported")
    return str(row[0])


async def mount_reader(
    conn: AsyncConnection[TupleRow], reader_id: str, location_id: str
) -> str | None:
    """Places an RFID reader at a location; returns where it was."""
    cur = await conn.execute(
        "SELECT location_id FROM devices WHERE device_id = %s AND device_type = 'llrp_reader'"
        " FOR UPDATE",
        (reader_id,),
    )
    row = await cur.fetchone()
    if row is None:
        raise UnknownGatewayError(f"no RFID reader {reader_id!r} has reported")
    cur = await conn.execute("SELECT 1 FROM locations WHERE location_id = %s", (location_id,))
    if await cur.fetchone() is None:
        raise InvalidGatewayConfigError(f"no location {location_id!r}")
    await conn.execute(
        "UPDATE devices SET location_id = %s WHERE device_id = %s", (location_id, reader_id)
    )
    return None if row[0] is None else str(row[0])


@dataclass(frozen=True)
class Mounted:
    device_id: str
    device_type: str
    location_id: str
    previous_location_id: str | None


async def mount_device(
    conn: AsyncConnection[TupleRow], device_id: str, location_id: str, *,
    mounted_at: datetime | None, actor: str, reason: str | None,
) -> Mounted:  # fmt: skip
    """Mounts a reported sensor (from ``mounted_at``, default now) or reader, audited."""
    kind = await device_type(conn, device_id)
    if kind == "sensor":
        when = mounted_at or datetime.now(UTC)
        try:
            before = await mount_sensor(conn, SensorMount(device_id, location_id, when, None))
        except MasterDataError as err:
            raise InvalidGatewayConfigError(str(err)) from err
        previous = before.location_id if before else None
    elif kind == "llrp_reader":
        previous = await mount_reader(conn, device_id, location_id)
    else:
        raise InvalidGatewayConfigError(f"a {kind} is not mounted at a location")
    out = Mounted(device_id, kind, location_id, previous)
    subject = ("sensor:" if kind == "sensor" else "reader:") + device_id
    action = "sensor.mount" if kind == "sensor" else "reader.mount"
    detail: dict[str, Any] = {
        "before": {"location_id": previous},
        "after": {"location_id": location_id, "mounted_at": when.isoformat()}
        if kind == "sensor"
        else {"location_id": location_id},
    }
    await audit(conn, actor=actor, action=action, subject=subject,
                reason=reason or "mounted from discovery", detail=detail)  # fmt: skip
    return out
