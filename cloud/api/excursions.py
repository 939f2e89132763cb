"""``/v1/excursions``: excursions by location and time, with the lots they quarantined."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, status
from psycopg import AsyncConnection
from psycopg.rows import TupleRow
from pydantic import BaseModel

from cloud.api.deps import IdQuery, Pool
from cloud.api.ledger import IdPath
from cloud.api.signatures import SignatureOut, shown
from cloud.auth.deps import Viewer
from protocols.records import UtcDatetime

router = APIRouter(prefix="/v1", tags=["cold chain"])


class QuarantinedLotOut(BaseModel):
    lot_id: int
    status: str


class ClosureSummary(BaseModel):
    """Root cause and corrective action, once QA closed the excursion (``cloud.alarms``)."""

    root_cause: str
    root_cause_detail: str | None
    corrective_action: str | None
    corrective_action_detail: str | None
    comment: str | None
    closed_by: str
    closed_at: datetime


class ExcursionOut(BaseModel):
    excursion_id: int
    location_id: str
    sensor_id: str
    kind: Literal["high", "low", "no_data"]
    level: Literal["alert", "action"]
    started_at: datetime
    confirmed_at: datetime | None
    escalated_at: datetime | None
    ended_at: datetime | None
    peak_value: float | None
    frozen: bool
    profile_id: str | None
    lots: list[QuarantinedLotOut]
    closure: ClosureSummary | None = None
    signatures: list[SignatureOut] = []
    """E-signatures on the excursion (its closure)."""


_SELECT = (
    "SELECT e.excursion_id, e.location_id, e.sensor_id, e.kind, e.level, e.started_at,"
    " e.confirmed_at, e.escalated_at, e.ended_at, e.peak_value, e.frozen, e.profile_id,"
    " coalesce((SELECT json_agg(json_build_object('lot_id', l.lot_id, 'status', l.status)"
    "   ORDER BY l.lot_id) FROM lots l WHERE l.lot_id = ANY(e.quarantined_lots)), '[]'),"
    " (SELECT row_to_json(c) FROM (SELECT root_cause, root_cause_detail, corrective_action,"
    "   corrective_action_detail, comment, closed_by, closed_at FROM excursion_closures"
    "   WHERE excursion_id = e.excursion_id) c)"
    " FROM excursions e"
)
_FIELDS = list(ExcursionOut.model_fields)


@router.get("/excursions")
async def get_excursions(
    pool: Pool,
    _: Viewer,
    location_id: IdQuery = None,
    open_only: Annotated[bool, Query(alias="open")] = False,
    since: UtcDatetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[ExcursionOut]:
    """Newest first, by reading time of the first breaching reading."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            _SELECT + " WHERE (%s::text IS NULL OR e.location_id = %s) AND (NOT %s OR"
            " e.ended_at IS NULL) AND (%s::timestamptz IS NULL OR e.started_at >= %s)"
            " ORDER BY e.started_at DESC, e.excursion_id DESC LIMIT %s",
            (location_id, location_id, open_only, since, since, limit),
        )
        rows = await cur.fetchall()
        return [await _out(conn, row) for row in rows]


@router.get("/excursions/{excursion_id}")
async def get_excursion(excursion_id: IdPath, pool: Pool, _: Viewer) -> ExcursionOut:
    async with pool.connection() as conn:
        cur = await conn.execute(_SELECT + " WHERE e.excursion_id = %s", (excursion_id,))
        row = await cur.fetchone()
        if row is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no excursion {excursion_id}")
        return await _out(conn, row)


async def _out(conn: AsyncConnection[TupleRow], row: Sequence[object]) -> ExcursionOut:
    fields: dict[str, Any] = dict(zip(_FIELDS[: len(row)], row, strict=True))
    found = ExcursionOut(**fields)
    found.signatures = await shown(conn, f"excursion:{found.excursion_id}")
    return found
