"""``/v1/lots/{id}/exposure``: a lot's temperature history where the ledger says it was."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel

from cloud.api.deps import Pool, Settings
from cloud.api.ledger import IdPath
from cloud.auth.deps import Viewer
from cloud.coldchain import TraceTooLongError
from cloud.coldchain.exposure import lot_exposure
from cloud.limits.bounds import check_bucket, check_not_ahead
from protocols.records import UtcDatetime

router = APIRouter(prefix="/v1", tags=["cold chain"])


class StayOut(BaseModel):
    location_id: str
    start: datetime
    end: datetime | None


class BucketOut(BaseModel):
    start: datetime
    mean: float | None
    min: float | None
    max: float | None
    known_seconds: float


class LotExcursionOut(BaseModel):
    excursion_id: int
    location_id: str
    sensor_id: str
    kind: str
    level: str
    started_at: datetime
    ended_at: datetime | None
    peak_value: float | None


class ExposureOut(BaseModel):
    lot_id: int
    gtin: str
    lot_number: str
    status: str
    profile_id: str
    as_of: datetime
    stays: list[StayOut]
    trace: list[BucketOut]
    mkt: float | None
    mkt_window: timedelta
    worst_window_mkt: float | None
    mkt_limit: float | None
    time_out_of_range: timedelta
    time_unknown: timedelta
    time_frozen: timedelta
    stability_budget: timedelta
    budget_left: timedelta
    budget_exhausted: bool
    excursions: list[LotExcursionOut]


@router.get("/lots/{lot_id}/exposure")
async def get_exposure(
    lot_id: IdPath,
    pool: Pool,
    settings: Settings,
    _: Viewer,
    bucket: Annotated[timedelta, Query()] = timedelta(hours=1),
    at: UtcDatetime | None = None,
) -> ExposureOut:
    """Trace (bucketed), MKT (life and worst USP window), time out of range, budget left.

    ``at`` may lie at most a few minutes ahead of the service's clock, and the trace at most
    ``MAX_TRACE_BUCKETS`` buckets long (422 says which bucket would fit).
    """
    clock = datetime.now(UTC)
    now = at or clock
    check_not_ahead(now, now=clock, skew=settings.limits.clock_skew, name="at")
    check_bucket(bucket, least=timedelta(minutes=1))
    try:
        async with pool.connection() as conn:
            found = await lot_exposure(conn, lot_id, now=now, bucket=bucket)
    except TraceTooLongError as err:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(err)) from err
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no lot {lot_id}")
    e, info, use = found.exposure, found.lot, found.exposure.budget
    return ExposureOut(
        lot_id=info.lot_id,
        gtin=info.gtin,
        lot_number=info.lot_number,
        status=info.status,
        profile_id=info.profile.profile_id,
        as_of=now,
        stays=[StayOut(location_id=s.location_id, start=s.start, end=s.end) for s in found.stays],
        trace=[
            BucketOut(
                start=b.start,
                mean=b.mean,
                min=b.min,
                max=b.max,
                known_seconds=b.known.total_seconds(),
            )
            for b in e.trace
        ],
        mkt=e.mkt,
        mkt_window=info.profile.mkt_window,
        worst_window_mkt=e.worst_window_mkt,
        mkt_limit=info.profile.mkt_limit,
        time_out_of_range=use.out_of_range,
        time_unknown=use.unknown,
        time_frozen=use.frozen,
        stability_budget=use.budget,
        budget_left=use.remaining,
        budget_exhausted=use.exhausted,
        excursions=[LotExcursionOut(**vars(x)) for x in found.excursions],
    )
