"""``/v1/reports``: make a report (archived), list the archive, fetch a report unchanged.

``POST /v1/reports/{kind}`` makes the report from the parameters in the body and answers its
archive record (201); ``GET /v1/reports/{id}/content`` returns the archived bytes exactly as
first made, with their SHA-256 in ``ETag`` and ``Repr-Digest`` (RFC 9530).
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, HTTPException, Path, Query, Response, status
from psycopg import AsyncConnection
from psycopg.rows import TupleRow
from pydantic import BaseModel, ConfigDict, Field, model_validator

from cloud.api.deps import Pool, Settings
from cloud.auth.deps import Admin, Viewer
from cloud.reports import ReportInputError, ReportNotFoundError, schedules
from cloud.reports.archive import Archived, Format, Kind, Rendered, fetch, listing, record
from cloud.reports.calibration_report import calibration_status_report, render_calibration
from cloud.reports.excursion_data import excursion_report
from cloud.reports.excursion_report import render_excursion
from cloud.reports.lot_report import lot_certificate, render_lot
from cloud.reports.mkt_report import monthly_mkt, render_mkt
from cloud.reports.periods import Frequency
from cloud.reports.schedules import ScheduledKind
from cloud.reports.service import make, unit_report
from protocols.records import ID_PATTERN, UtcDatetime

router = APIRouter(prefix="/v1", tags=["reports"])
ReportId = Annotated[int, Path(ge=1, le=2**63 - 1)]
R = TypeVar("R")


class ReportOut(BaseModel):
    report_id: int
    kind: Kind
    format: Format
    title: str
    parameters: dict[str, Any]
    created_by: str
    created_at: datetime
    media_type: str
    filename: str
    size: int
    sha256: str
    content_url: str


def report_out(a: Archived) -> ReportOut:
    return ReportOut(**vars(a), content_url=f"/v1/reports/{a.report_id}/content")


class UnitReportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    location_id: Annotated[str, Field(pattern=ID_PATTERN, max_length=200)]
    start: UtcDatetime
    end: UtcDatetime
    """exclusive"""
    format: Format = "pdf"


def refused(err: ReportInputError) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(err))


async def archived_report(
    pool: Pool,
    gather: Callable[[AsyncConnection[TupleRow]], Awaitable[R]],
    render: Callable[[R], Rendered],
    *,
    created_by: str,
) -> ReportOut:
    """Makes and archives a report (``make``); bad input is a 422."""
    try:
        made, _ = await make(pool, gather, render, created_by=created_by)
    except ReportInputError as err:
        raise refused(err) from err
    return report_out(made)


@router.post("/reports/unit", status_code=status.HTTP_201_CREATED)
async def make_unit_report(
    body: UnitReportIn, pool: Pool, settings: Settings, user: Viewer
) -> ReportOut:
    """A storage unit's temperature record over [start, end): daily min/max/mean, the chart,
    excursions, gaps, acknowledgements, maintenance windows, overdue calibration."""
    try:
        made, _ = await unit_report(
            pool, body.location_id, start=body.start, end=body.end, fmt=body.format,
            created_by=user.name, default_silence=settings.jobs.default_silence,
        )  # fmt: skip
    except ReportInputError as err:
        raise refused(err) from err
    return report_out(made)


class ExcursionReportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    excursion_id: Annotated[int, Field(ge=1, le=2**63 - 1)]
    format: Format = "pdf"


@router.post("/reports/excursion", status_code=status.HTTP_201_CREATED)
async def make_excursion_report(
    body: ExcursionReportIn, pool: Pool, settings: Settings, user: Viewer
) -> ReportOut:
    """One excursion: timeline, chart, acknowledgements with comments, root cause and
    corrective action, affected lots, dispositions with their e-signatures."""
    now = datetime.now(UTC)
    silence = settings.jobs.default_silence
    return await archived_report(
        pool, lambda c: excursion_report(c, body.excursion_id, now=now, default_silence=silence),
        lambda r: render_excursion(r, body.format, generated=now), created_by=user.name,
    )  # fmt: skip


class LotReportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lot_id: Annotated[int, Field(ge=1, le=2**63 - 1)]
    format: Format = "pdf"


@router.post("/reports/lot", status_code=status.HTTP_201_CREATED)
async def make_lot_certificate(body: LotReportIn, pool: Pool, user: Viewer) -> ReportOut:
    """A lot's cold-chain certificate as of now: stays, MKT, time out of range, stability
    budget left, excursions, disposition (figures of ``GET /v1/lots/{id}/exposure``)."""
    now = datetime.now(UTC)
    return await archived_report(
        pool, lambda c: lot_certificate(c, body.lot_id, now=now),
        lambda r: render_lot(r, body.format, generated=now), created_by=user.name,
    )  # fmt: skip


class MktReportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    site_id: Annotated[str, Field(pattern=ID_PATTERN, max_length=200)]
    month: Annotated[str, Field(pattern=r"^(19[7-9][0-9]|2[0-9]{3})-(0[1-9]|1[0-2])$")]
    """``YYYY-MM``, the site's calendar month."""
    format: Format = "pdf"


@router.post("/reports/mkt", status_code=status.HTTP_201_CREATED)
async def make_mkt_report(
    body: MktReportIn, pool: Pool, settings: Settings, user: Viewer
) -> ReportOut:
    """Monthly MKT per storage area of a site, with the worst USP <1079.2> window."""
    now = datetime.now(UTC)
    month = date.fromisoformat(body.month + "-01")
    silence = settings.jobs.default_silence
    return await archived_report(
        pool, lambda c: monthly_mkt(c, body.site_id, month, now=now, default_silence=silence),
        lambda r: render_mkt(r, body.format, generated=now), created_by=user.name,
    )  # fmt: skip


class CalibrationReportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    site_id: Annotated[str, Field(pattern=ID_PATTERN, max_length=200)] | None = None
    format: Format = "pdf"


@router.post("/reports/calibration", status_code=status.HTTP_201_CREATED)
async def make_calibration_report(
    body: CalibrationReportIn, pool: Pool, settings: Settings, user: Viewer
) -> ReportOut:
    """The calibration status of every sensor (of a site), as ``GET /v1/calibrations``."""
    now = datetime.now(UTC)
    lead = settings.alarms.calibration_lead
    return await archived_report(
        pool, lambda c: calibration_status_report(c, now=now, lead=lead, site_id=body.site_id),
        lambda r: render_calibration(r, body.format, generated=now), created_by=user.name,
    )  # fmt: skip


@router.get("/reports")
async def list_reports(
    pool: Pool,
    _: Viewer,
    kind: Kind | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[ReportOut]:
    """The archive, newest first."""
    async with pool.connection() as conn:
        return [report_out(a) for a in await listing(conn, kind=kind, limit=limit)]


@router.get("/reports/{report_id}")
async def get_report(report_id: ReportId, pool: Pool, _: Viewer) -> ReportOut:
    async with pool.connection() as conn:
        try:
            return report_out(await record(conn, report_id))
        except ReportNotFoundError as err:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(err)) from err


def content_response(made: Archived, content: bytes) -> Response:
    digest = base64.b64encode(bytes.fromhex(made.sha256)).decode()
    return Response(
        content,
        media_type=made.media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{made.filename}"',
            "ETag": f'"{made.sha256}"',
            "Repr-Digest": f"sha-256=:{digest}:",
            "X-Report-Id": str(made.report_id),
            "Cache-Control": "private, max-age=0",
        },
    )


@router.get("/reports/{report_id}/content", response_class=Response)
async def get_report_content(report_id: ReportId, pool: Pool, _: Viewer) -> Response:
    """The report's bytes as archived (same bytes, same SHA-256, every time)."""
    async with pool.connection() as conn:
        try:
            made, content = await fetch(conn, report_id)
        except ReportNotFoundError as err:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(err)) from err
    return content_response(made, content)


class ScheduleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    site_id: Annotated[str, Field(pattern=ID_PATTERN, max_length=200)]
    kind: ScheduledKind
    frequency: Frequency
    location_id: Annotated[str, Field(pattern=ID_PATTERN, max_length=200)] | None = None
    """For ``kind`` unit: the storage unit; without it, every storage unit of the site (one
    document, a part per unit)."""
    format: Format = "pdf"
    channel: Annotated[str, Field(min_length=1, max_length=64)]
    """An alarm channel of the site: e-mail carries the file, other channels a link."""

    @model_validator(mode="after")
    def _unit_needs_location(self) -> ScheduleIn:
        if self.kind != "unit" and self.location_id is not None:
            raise ValueError("location_id is given for kind unit only")
        return self


class ScheduleOut(BaseModel):
    schedule_id: int
    site_id: str
    kind: ScheduledKind
    frequency: Frequency
    location_id: str | None
    format: Format
    channel: str
    created_by: str
    created_at: datetime
    disabled_at: datetime | None


@router.post("/report-schedules", status_code=status.HTTP_201_CREATED)
async def create_schedule(body: ScheduleIn, pool: Pool, user: Admin) -> ScheduleOut:
    """A daily, weekly or monthly report of a site, made for the last complete period (site's
    days) and sent through one of the site's alarm channels (audited)."""
    try:
        async with pool.connection() as conn, conn.transaction():
            made = await schedules.create(conn, body.model_dump(), actor=user.name)
    except ReportInputError as err:
        raise refused(err) from err
    return ScheduleOut(**vars(made))


@router.get("/report-schedules")
async def list_schedules(pool: Pool, _: Viewer) -> list[ScheduleOut]:
    async with pool.connection() as conn:
        return [ScheduleOut(**vars(s)) for s in await schedules.listing(conn)]


@router.post("/report-schedules/{schedule_id}/disable")
async def disable_schedule(schedule_id: ReportId, pool: Pool, user: Admin) -> ScheduleOut:
    try:
        async with pool.connection() as conn, conn.transaction():
            done = await schedules.disable(conn, schedule_id, actor=user.name)
    except ReportInputError as err:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(err)) from err
    return ScheduleOut(**vars(done))
