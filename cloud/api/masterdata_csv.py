"""``/v1/export/{kind}`` and ``/v1/import/{kind}``: master data as CSV files.

``kind`` is one of site, location, profile, product, lot, sensor (``cloud.admin.writes``).
Export is for every role that reads master data; import is for admins. An import sends the
file as the request body (``Content-Type: text/csv``); ``apply=false`` (the default) is the dry
run. The answer lists every row with its line, key and outcome (created, updated, unchanged) or
its error; ``applied`` is true only when ``apply=true`` and no row was refused, and then every
row was written in one transaction, each change audited with the reason from
``X-Coldtrace-Reason``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response, status
from pydantic import BaseModel

from cloud.admin.csv_io import CsvFileError, ImportReport, export_csv, import_csv, kind_of
from cloud.admin.writes import KINDS, Kind, Outcome
from cloud.api.asns import Reason
from cloud.api.deps import Pool
from cloud.auth.deps import Admin, Viewer

router = APIRouter(prefix="/v1", tags=["master data"])

KindPath = Annotated[str, Path(pattern="^(" + "|".join(KINDS) + ")$")]


class RowOut(BaseModel):
    line: int
    key: str
    outcome: Outcome | None
    error: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class ImportOut(BaseModel):
    kind: str
    dry_run: bool
    applied: bool
    created: int
    updated: int
    unchanged: int
    errors: int
    rows: list[RowOut]


def report_out(report: ImportReport) -> ImportOut:
    return ImportOut(
        kind=report.kind, dry_run=report.dry_run, applied=report.applied,
        created=report.count("created"), updated=report.count("updated"),
        unchanged=report.count("unchanged"), errors=report.errors,
        rows=[RowOut(**r.__dict__) for r in report.rows],
    )  # fmt: skip


def csv_kind(name: str) -> Kind:
    try:
        return kind_of(name)
    except CsvFileError as err:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(err)) from err


def csv_text(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as err:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"the file is not UTF-8 (byte {err.start}): save it as CSV UTF-8",
        ) from err


async def run_import(
    pool: Pool, kind: Kind, text: str, *, actor: str, reason: str, apply: bool
) -> ImportOut:
    try:
        async with pool.connection() as conn:
            found = await import_csv(conn, kind, text, actor=actor, reason=reason, apply=apply)
    except CsvFileError as err:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(err)) from err
    return report_out(found)


@router.get("/export/{kind}", response_class=Response)
async def export(kind: KindPath, pool: Pool, _: Viewer) -> Response:
    """Every row of that kind as CSV, in an order that imports as it is."""
    async with pool.connection() as conn:
        text = await export_csv(conn, csv_kind(kind))
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{kind}s.csv"'},
    )


@router.post("/import/{kind}")
async def import_file(
    kind: KindPath, request: Request, pool: Pool, *, user: Admin, reason: Reason = None,
    apply: Annotated[bool, Query(description="false: dry run (nothing is written)")] = False,
) -> ImportOut:  # fmt: skip
    """Checks (dry run) or applies a CSV file of that kind, all rows or none."""
    text = csv_text(await request.body())
    return await run_import(
        pool, csv_kind(kind), text, actor=user.name, reason=reason or "CSV import", apply=apply
    )
