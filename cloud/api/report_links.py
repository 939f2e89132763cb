"""The dashboard's report links (``/ui/reports/...``): made on a click, archived like any
other report (who clicked is ``created_by``), and handed out as a download.

They answer a signed-in dashboard session (the cookie), not a bearer token; the API's
``POST /v1/reports/...`` is the way for scripts.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Response, status

from cloud.api.deps import Pool, Settings
from cloud.api.reports import content_response
from cloud.reports import ReportInputError
from cloud.reports.archive import Format
from cloud.reports.excursion_data import excursion_report
from cloud.reports.excursion_report import render_excursion
from cloud.reports.lot_report import lot_certificate, render_lot
from cloud.reports.service import make, unit_report
from cloud.web.config import WebSettings
from cloud.web.session import SessionUser, remember_settings
from protocols.records import UtcDatetime


def build_router(settings: WebSettings | None = None) -> APIRouter:
    """The links, under the dashboard's session settings (``COLDTRACE_WEB_*`` by default)."""
    links = APIRouter(
        prefix="/ui/reports", tags=["dashboard"], include_in_schema=False,
        dependencies=[remember_settings(settings)],
    )  # fmt: skip
    for path, endpoint in (("/unit", unit_link), ("/lot/{lot_id}", lot_link),
                           ("/excursion/{excursion_id}", excursion_link)):  # fmt: skip
        links.add_api_route(path, endpoint, methods=["GET"], response_class=Response)
    return links


RowId = Annotated[int, Path(ge=1, le=2**63 - 1)]
FormatQuery = Annotated[Format, Query()]


async def unit_link(
    *,
    location: Annotated[str, Query(min_length=1, max_length=200)],
    start: UtcDatetime,
    end: UtcDatetime,
    pool: Pool,
    settings: Settings,
    user: SessionUser,
    format: FormatQuery = "pdf",
) -> Response:
    """The temperature record of the range shown on the unit's chart."""
    try:
        made, content = await unit_report(
            pool, location, start=start, end=end, fmt=format, created_by=user.name,
            default_silence=settings.jobs.default_silence,
        )  # fmt: skip
    except ReportInputError as err:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(err)) from err
    return content_response(made, content)


async def lot_link(
    lot_id: RowId, pool: Pool, user: SessionUser, format: FormatQuery = "pdf"
) -> Response:
    """The lot's cold-chain certificate as of now."""
    now = datetime.now(UTC)
    try:
        made, content = await make(
            pool, lambda c: lot_certificate(c, lot_id, now=now),
            lambda r: render_lot(r, format, generated=now), created_by=user.name,
        )  # fmt: skip
    except ReportInputError as err:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(err)) from err
    return content_response(made, content)


async def excursion_link(
    excursion_id: RowId,
    pool: Pool,
    settings: Settings,
    user: SessionUser,
    format: FormatQuery = "pdf",
) -> Response:
    """One excursion's report."""
    now = datetime.now(UTC)
    silence = settings.jobs.default_silence
    try:
        made, content = await make(
            pool, lambda c: excursion_report(c, excursion_id, now=now, default_silence=silence),
            lambda r: render_excursion(r, format, generated=now), created_by=user.name,
        )  # fmt: skip
    except ReportInputError as err:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(err)) from err
    return content_response(made, content)
