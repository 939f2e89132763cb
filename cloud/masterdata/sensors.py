"""Where each temperature sensor is mounted (``sensors`` and the sensor's ``devices`` row).

``sensors`` holds the current mount, which the stale-sensor job, the read API and the
dashboard read as ``coalesce(sensors.location_id, devices.location_id)``. A mount therefore
writes ``sensors`` and, when the edge has already reported the sensor as a device, the same
location on its ``devices`` row, so no reader sees two places. Every mount is also kept, with
the time it takes effect, in ``sensor_mounts`` (a trigger of migration 0100 writes it), which the
cold-chain step reads to judge each reading at the location the sensor had when it was taken
(``cloud.coldchain.mounts``). A remount may not predate the current one: readings already
judged between the two would otherwise belong to a location they were not judged at.
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


@dataclass(frozen=True)
class MountRecord:
    """One entry of a sensor's mount history."""

    valid_from: datetime | None
    """None: since the sensor was first known (no mount time given)."""
    location_id: str | None
    """None: unmounted from ``valid_from`` on."""
    recorded_at: datetime


async def mount_history(conn: AsyncConnection[TupleRow], sensor_id: str) -> list[MountRecord]:
    """Where ``sensor_id`` has been mounted, oldest first."""
    cur = await conn.execute(
        "SELECT CASE WHEN isfinite(valid_from) THEN valid_from END, location_id, recorded_at"
        " FROM sensor_mounts WHERE sensor_id = %s ORDER BY valid_from",
        (sensor_id,),
    )
    return [MountRecord(*row) for row in await cur.fetchall()]


async def list_sensors(
    conn: AsyncConnection[TupleRow], location_id: str | None = None
) -> list[SensorMount]:
    cur = await conn.execute(
        f"SELECT {_COLUMNS} FROM sensors WHERE %(loc)s::text IS NULL OR location_id = %(loc)s"
        " ORDER BY sensor_id",
        {"loc": location_id},
    )
    return [SensorMount(*row) for row in await cur.fetchall()]
