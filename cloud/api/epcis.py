"""``/v1/epcis/events``: a GS1 EPCIS 2.0 JSON-LD document of movements and sensor reports."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import JSONResponse

from cloud.api.deps import Pool
from cloud.api.ledger import LabelQuery
from cloud.auth.deps import Viewer
from cloud.epcis import export as epcis
from cloud.ledger.instant import Instant
from cloud.limits.bounds import check_bucket, check_buckets

router = APIRouter(prefix="/v1/epcis", tags=["epcis"])

MAX_SENSOR_INTERVALS = 10_000
"""Sensor report intervals per export window: a year of hours, a month of 5 minutes."""


class EpcisResponse(JSONResponse):
    media_type = "application/ld+json"


@router.get("/events", response_class=EpcisResponse)
async def events(
    *,
    pool: Pool,
    _: Viewer,
    since: Annotated[Instant, Query(alias="from")],
    until: Annotated[Instant, Query(alias="to")],
    gtin: Annotated[str | None, Query(pattern=r"^[0-9]{14}$")] = None,
    lot: LabelQuery = None,
    location_id: LabelQuery = None,
    sensors: bool = False,
    sensor_interval: Annotated[timedelta, Query()] = timedelta(hours=1),
    limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
) -> dict[str, Any]:
    """Receiving, quarantine, release, reject, recall hold and issue events of the window."""
    if until <= since:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "'to' must be after 'from'")
    check_bucket(sensor_interval, name="sensor_interval", least=timedelta(minutes=1))
    if sensors:
        # each interval of each location costs a look-up of the lots held there
        check_buckets(since, until, sensor_interval, max_buckets=MAX_SENSOR_INTERVALS)
    q = epcis.Query(since, until, gtin, lot, location_id, sensors, sensor_interval, limit)
    async with pool.connection() as conn:
        return await epcis.export(conn, q)
