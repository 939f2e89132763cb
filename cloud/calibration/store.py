"""Calibration records in the database: append (audited) and read, status of every sensor."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from cloud.auth.service import audit
from cloud.calibration import UnknownSensorError
from cloud.calibration.core import Calibration, Reason, Result, Status, flagged_spans, status_on

_COLUMNS = (
    "calibration_id, sensor_id, calibrated_on, certificate_ref, result, offset_c, uncertainty_c,"
    " next_due, note, recorded_by, recorded_at"
)


@dataclass(frozen=True)
class NewCalibration:
    calibrated_on: date
    certificate_ref: str
    result: Result
    offset_c: float | None
    uncertainty_c: float | None
    next_due: date
    note: str | None


@dataclass(frozen=True)
class SensorStatus:
    sensor_id: str
    description: str | None
    location_id: str | None
    site_id: str | None
    timezone: str
    status: Status


@dataclass(frozen=True)
class FlaggedSpan:
    sensor_id: str
    start: datetime
    end: datetime
    reason: Reason


_SENSOR_SQL = """
SELECT s.sensor_id FROM sensors s WHERE s.sensor_id = %(id)s
UNION SELECT d.device_id FROM devices d WHERE d.device_id = %(id)s AND d.device_type = 'sensor'
"""


async def add(
    conn: AsyncConnection[TupleRow], sensor_id: str, new: NewCalibration, *, actor: str
) -> Calibration:
    """Appends a calibration record and its audit entry (inside the caller's transaction)."""
    cur = await conn.execute(_SENSOR_SQL, {"id": sensor_id})
    if await cur.fetchone() is None:
        raise UnknownSensorError(f"no sensor {sensor_id!r}")
    cur = await conn.execute(
        "INSERT INTO sensor_calibrations (sensor_id, calibrated_on, certificate_ref, result,"
        " offset_c, uncertainty_c, next_due, note, recorded_by)"
        f" VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING {_COLUMNS}",
        (sensor_id, new.calibrated_on, new.certificate_ref, new.result, new.offset_c,
         new.uncertainty_c, new.next_due, new.note, actor),
    )  # fmt: skip
    row = await cur.fetchone()
    assert row is not None
    made = Calibration(*row)
    await audit(
        conn, actor=actor, action="calibration.record", subject=f"sensor:{sensor_id}",
        reason=new.note,
        detail={"calibration_id": made.calibration_id, "calibrated_on": str(new.calibrated_on),
                "certificate_ref": new.certificate_ref, "result": new.result,
                "offset_c": new.offset_c, "uncertainty_c": new.uncertainty_c,
                "next_due": str(new.next_due)},
    )  # fmt: skip
    return made


async def records(
    conn: AsyncConnection[TupleRow], sensor_ids: Sequence[str]
) -> dict[str, list[Calibration]]:
    """Every calibration of the sensors, oldest first."""
    cur = await conn.execute(
        f"SELECT {_COLUMNS} FROM sensor_calibrations WHERE sensor_id = ANY(%s)"
        " ORDER BY sensor_id, calibrated_on, calibration_id",
        (list(sensor_ids),),
    )
    out: dict[str, list[Calibration]] = defaultdict(list)
    for row in await cur.fetchall():
        out[row[1]].append(Calibration(*row))
    return out


async def flagged(
    conn: AsyncConnection[TupleRow],
    sensor_ids: Sequence[str],
    *,
    start: datetime,
    end: datetime,
    zone: str,
) -> list[FlaggedSpan]:
    """Periods of [start, end) when a sensor's calibration was overdue or had failed."""
    by_sensor = await records(conn, sensor_ids)
    return [
        FlaggedSpan(sensor, a, b, reason)
        for sensor in sensor_ids
        for a, b, reason in flagged_spans(by_sensor.get(sensor, []), start=start, end=end,
                                          zone=zone)
    ]  # fmt: skip


_ALL_SENSORS_SQL = """
WITH known AS (
    SELECT sensor_id, description, location_id FROM sensors
    UNION ALL
    SELECT d.device_id, NULL, d.location_id FROM devices d
    WHERE d.device_type = 'sensor' AND NOT EXISTS (SELECT 1 FROM sensors s
                                                   WHERE s.sensor_id = d.device_id)
)
SELECT k.sensor_id, k.description, k.location_id, l.site_id, coalesce(si.timezone, 'UTC')
FROM known k LEFT JOIN locations l USING (location_id) LEFT JOIN sites si USING (site_id)
WHERE %(site)s::text IS NULL OR l.site_id = %(site)s
ORDER BY k.sensor_id
"""


async def statuses(
    conn: AsyncConnection[TupleRow], *, now: datetime, lead: timedelta, site_id: str | None = None
) -> list[SensorStatus]:
    """The calibration status of every sensor (of one site), on each site's own date."""
    cur = await conn.execute(_ALL_SENSORS_SQL, {"site": site_id})
    sensors = await cur.fetchall()
    by_sensor = await records(conn, [r[0] for r in sensors])
    out = []
    for sensor_id, description, location_id, site, zone in sensors:
        day = _local_day(now, zone)
        status = status_on(by_sensor.get(sensor_id, []), day, lead=lead)
        out.append(SensorStatus(sensor_id, description, location_id, site, zone, status))
    return out


def _local_day(now: datetime, zone: str) -> date:
    return now.astimezone(ZoneInfo(zone)).date()
