"""Sensor calibration: ``/v1/sensors/{id}/calibrations`` (record: QA or admin; read: anyone
signed in) and ``/v1/calibrations`` (the status of every sensor).

A record is never edited: a correction is a new record (with a note saying why). Every record
is in the audit log (``calibration.record``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Query, status
from pydantic import BaseModel, ConfigDict, Field, model_validator

from cloud.api.deps import Pool, Settings
from cloud.auth.deps import Qa, Viewer
from cloud.calibration import UnknownSensorError
from cloud.calibration.core import Calibration, Result, State
from cloud.calibration.store import NewCalibration, add, records, statuses
from protocols.records import ID_PATTERN

router = APIRouter(prefix="/v1", tags=["calibration"])
EARLIEST = date(1970, 1, 1)
MAX_INTERVAL = timedelta(days=10 * 366)
"""A calibration interval longer than ten years is a typing error, not a programme."""
SensorPath = Annotated[str, Path(pattern=ID_PATTERN, max_length=200)]
Celsius = Annotated[float, Field(ge=-50, le=50, allow_inf_nan=False)]


class CalibrationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    calibrated_on: date
    certificate_ref: Annotated[str, Field(min_length=1, max_length=200)]
    result: Result
    """``pass``, ``adjusted`` (corrected during calibration) or ``fail``."""
    offset_c: Celsius | None = None
    """Reference minus sensor, °C, as found."""
    uncertainty_c: Annotated[float, Field(ge=0, le=50, allow_inf_nan=False)] | None = None
    next_due: date
    note: Annotated[str, Field(max_length=2000)] | None = None

    @model_validator(mode="after")
    def _due_after(self) -> CalibrationIn:
        if self.next_due <= self.calibrated_on:
            raise ValueError("next_due must be after calibrated_on")
        if self.calibrated_on < EARLIEST or self.next_due - self.calibrated_on > MAX_INTERVAL:
            raise ValueError(
                f"calibrated_on from {EARLIEST} on, next_due at most {MAX_INTERVAL.days} days later"
            )
        if self.calibrated_on > datetime.now(UTC).date():
            raise ValueError("calibrated_on lies in the future")
        return self


class CalibrationOut(BaseModel):
    calibration_id: int
    sensor_id: str
    calibrated_on: date
    certificate_ref: str
    result: Result
    offset_c: float | None
    uncertainty_c: float | None
    next_due: date
    note: str | None
    recorded_by: str
    recorded_at: datetime


def calibration_out(c: Calibration) -> CalibrationOut:
    return CalibrationOut(**vars(c))


@router.post("/sensors/{sensor_id:path}/calibrations", status_code=status.HTTP_201_CREATED)
async def record_calibration(
    sensor_id: SensorPath, body: CalibrationIn, pool: Pool, user: Qa
) -> CalibrationOut:
    """Records a calibration of the sensor (audited)."""
    new = NewCalibration(**body.model_dump())
    try:
        async with pool.connection() as conn, conn.transaction():
            made = await add(conn, sensor_id, new, actor=user.name)
    except UnknownSensorError as err:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(err)) from err
    return calibration_out(made)


@router.get("/sensors/{sensor_id:path}/calibrations")
async def list_calibrations(sensor_id: SensorPath, pool: Pool, _: Viewer) -> list[CalibrationOut]:
    """The sensor's calibrations, oldest first."""
    async with pool.connection() as conn:
        found = await records(conn, [sensor_id])
    return [calibration_out(c) for c in found.get(sensor_id, [])]


class SensorCalibrationOut(BaseModel):
    sensor_id: str
    description: str | None
    location_id: str | None
    site_id: str | None
    state: State
    """valid, due_soon (within the lead time), overdue, failed, or unknown (no record)."""
    days_left: int | None
    last: CalibrationOut | None


@router.get("/calibrations")
async def calibration_status(
    pool: Pool,
    settings: Settings,
    _: Viewer,
    site_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    state: Literal["valid", "due_soon", "overdue", "failed", "unknown"] | None = None,
) -> list[SensorCalibrationOut]:
    """The calibration status of every sensor today (each site's own date)."""
    async with pool.connection() as conn:
        found = await statuses(
            conn, now=datetime.now(UTC), lead=settings.alarms.calibration_lead, site_id=site_id
        )
    return [
        SensorCalibrationOut(
            sensor_id=s.sensor_id, description=s.description, location_id=s.location_id,
            site_id=s.site_id, state=s.status.state, days_left=s.status.days_left,
            last=calibration_out(s.status.last) if s.status.last else None,
        )
        for s in found
        if state is None or s.status.state == state
    ]  # fmt: skip
