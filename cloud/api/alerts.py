"""``/v1/alerts``: the alarm list and acknowledgement."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, Field

from cloud.api.deps import IdQuery, Pool
from cloud.api.ledger import IdPath
from cloud.auth.deps import Responder, Viewer
from cloud.coldchain.alerts import AlertKind, Severity, acknowledge, list_alerts

router = APIRouter(prefix="/v1", tags=["cold chain"])


class AlertOut(BaseModel):
    alert_id: int
    raised_at: datetime
    at: datetime
    kind: AlertKind
    severity: Severity
    location_id: str | None
    sensor_id: str | None
    excursion_id: int | None
    message: str
    detail: dict[str, Any]
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    ack_note: str | None


class AcknowledgeIn(BaseModel):
    note: Annotated[str | None, Field(max_length=500)] = None


@router.get("/alerts")
async def get_alerts(
    pool: Pool,
    _: Viewer,
    unacknowledged: bool = False,
    location_id: IdQuery = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AlertOut]:
    """Newest first; ``unacknowledged=true`` is the alarm list still waiting for someone."""
    async with pool.connection() as conn:
        rows = await list_alerts(
            conn, unacknowledged=unacknowledged, location_id=location_id, limit=limit
        )
    return [AlertOut(**row) for row in rows]


@router.post("/alerts/{alert_id}/acknowledge")
async def post_acknowledge(
    alert_id: IdPath, body: AcknowledgeIn, pool: Pool, user: Responder
) -> AlertOut:
    """Acknowledges an alert (operators, QA and admins); the first acknowledgement stands."""
    async with pool.connection() as conn, conn.transaction():
        row = await acknowledge(conn, alert_id, user=user.name, note=body.note)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no alert {alert_id}")
    return AlertOut(**row)
