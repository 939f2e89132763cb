"""Where each temperature sensor is mounted (``sensors`` and the sensor's ``devices`` row).

The cold-chain engine, the stale-sensor job and the read API find a sensor's location as
``coalesce(sensors.location_id, devices.location_id)``; the location's storage profile then
judges its readings. A mount therefore writes ``sensors`` and, when the edge has already
reported the sensor as a device, the same location on its ``devices`` row, so no reader sees
two places. Schema v1 keeps one current mount per sensor: the previous one is kept in the
audit trail by the caller (``previous`` below), and a remount may not predate the current one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from cloud.masterdata import MasterDataConflictError, UnknownReferenceError


@dataclass(frozen=True)
class SensorMount:
    sensor_id: str
    location_id: str | None
    mounted_at: datetime | None
    """None for sensors registered without a mount time (stored as ``-infinity``)."""
    description: str | None


# '-infinity' (the schema's default) does not fit a Python datetime: read it as NULL.
_COLUMNS = "sensor_id, location_id, CASE WHEN isfinite(mounted_at) THEN mounted_at END, description"


async def get_sensor(conn: AsyncConnection[TupleRow], sensor_id: str) -> SensorMount | None:
    cur = await conn.execute(f"SELECT {_COLUMNS} FROM sensors WHERE sensor_id = %s", (sensor_id,))
    row = await cur.fetchone()
    return SensorMount(*row) if row else None


async def mount_sensor(conn: AsyncConnection[TupleRow], mount: SensorMount) -> SensorMount | None:
    """Mounts (or unmounts, with no location) a sensor; returns the mount it replaced.

    Refuses a mount time before the current one: readings between the two would otherwise be
    judged against the wrong location without a trace.
    """
    if mount.location_id is not None:
        cur = await conn.execute(
            "SELECT 1 FROM locations WHERE location_id = %s", (mount.location_id,)
        )
        if await cur.fetchone() is None:
            raise UnknownReferenceError(f"no location {mount.location_id!r}")
    # FOR UPDATE cannot lock a row that does not exist yet: two first mounts of one sensor
    # are ordered by a lock on its id instead.
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", ("sensor:" + mount.sensor_id,)
    )
    cur = await conn.execute(
        f"SELECT {_COLUMNS} FROM sensors WHERE sensor_id = %s", (mount.sensor_id,)
    )
    row = await cur.fetchone()
    previous = SensorMount(*row) if row else None
    if (
        previous is not None
        and previous.mounted_at is not None
        and mount.mounted_at is not None
        and mount.mounted_at < previous.mounted_at
    ):
        raise MasterDataConflictError(
            f"sensor {mount.sensor_id!r} has been mounted since {previous.mounted_at.isoformat()};"
            " a new mount cannot start before that"
        )
    await conn.execute(
        "INSERT INTO sensors (sensor_id, location_id, mounted_at, description)"
        " VALUES (%s, %s, coalesce(%s::timestamptz, '-infinity'), %s) ON CONFLICT (sensor_id)"
        " DO UPDATE SET location_id = EXCLUDED.location_id, mounted_at = EXCLUDED.mounted_at,"
        " description = EXCLUDED.description",
        (mount.sensor_id, mount.location_id, mount.mounted_at, mount.description),
    )
    await conn.execute(
        "UPDATE devices SET location_id = %s WHERE device_id = %s AND device_type = 'sensor'",
        (mount.location_id, mount.sensor_id),
    )
    return previous


async def list_sensors(
    conn: AsyncConnection[TupleRow], location_id: str | None = None
) -> list[SensorMount]:
    cur = await conn.execute(
        f"SELECT {_COLUMNS} FROM sensors WHERE %(loc)s::text IS NULL OR location_id = %(loc)s"
        " ORDER BY sensor_id",
        {"loc": location_id},
    )
    return [SensorMount(*row) for row in await cur.fetchall()]
