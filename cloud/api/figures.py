"""Replenishment lead times per site and product (issue 18, part 5), used by the site figures'
safety stock and reorder point (``GET /v1/sites/{id}/figures``). Everyone signed in reads them;
administrators set and clear them, audited with before/after and the reason."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Path, Response, status
from psycopg import AsyncConnection
from psycopg.rows import TupleRow
from pydantic import BaseModel, ConfigDict, Field

from cloud.api.deps import Pool
from cloud.auth.deps import Admin, Viewer
from cloud.auth.service import audit
from cloud.transfers.lead_times import LeadTime, clear_lead_time, lead_times, set_lead_time

router = APIRouter(prefix="/v1/sites/{site_id}/lead-times", tags=["figures"])

SitePath = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[!-~]+$")]
GtinPath = Annotated[str, Path(pattern=r"^[0-9]{14}$")]
Reason = Annotated[str | None, Header(alias="X-Coldtrace-Reason", max_length=500)]


class LeadTimeIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    lead_time_days: float = Field(gt=0, le=365)
    """Days from ordering to the goods being usable at the site (fractions allowed)."""


class LeadTimeOut(BaseModel):
    site_id: str
    gtin: str
    lead_time_days: float
    set_by: str
    set_at: datetime


def _out(lt: LeadTime) -> LeadTimeOut:
    return LeadTimeOut(
        site_id=lt.site_id, gtin=lt.gtin, lead_time_days=lt.lead_time.total_seconds() / 86400,
        set_by=lt.set_by, set_at=lt.set_at,
    )  # fmt: skip


async def _known(conn: AsyncConnection[TupleRow], site: str, gtin: str | None = None) -> None:
    cur = await conn.execute("SELECT 1 FROM sites WHERE site_id = %s", (site,))
    if await cur.fetchone() is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no site {site!r}")
    if gtin is not None:
        cur = await conn.execute("SELECT 1 FROM products WHERE gtin = %s", (gtin,))
        if await cur.fetchone() is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no product {gtin}")


@router.get("")
async def get_lead_times(_: Viewer, site_id: SitePath, pool: Pool) -> list[LeadTimeOut]:
    """The lead times set for the site's products (others are measured or the default)."""
    async with pool.connection() as conn:
        await _known(conn, site_id)
        return [_out(lt) for lt in await lead_times(conn, site_id)]


@router.put("/{gtin}")
async def put_lead_time(
    site_id: SitePath, gtin: GtinPath, body: LeadTimeIn, pool: Pool, *, user: Admin,
    reason: Reason = None,
) -> LeadTimeOut:  # fmt: skip
    """Sets the product's lead time at the site."""
    async with pool.connection() as conn, conn.transaction():
        await _known(conn, site_id, gtin)
        old = await set_lead_time(
            conn, site_id, gtin, timedelta(days=body.lead_time_days), by=user.name
        )
        [new] = await lead_times(conn, site_id, gtin)
        await audit(
            conn, actor=user.name, action="lead_time.put", subject=f"site:{site_id}/gtin:{gtin}",
            reason=reason or "replenishment lead time set",
            detail={"before": None if old is None else _out(old).lead_time_days,
                    "after": body.lead_time_days},
        )  # fmt: skip
    return _out(new)


@router.delete("/{gtin}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_lead_time(
    site_id: SitePath, gtin: GtinPath, pool: Pool, user: Admin, reason: Reason = None
) -> Response:
    """Clears the product's lead time: it is measured from transfers again, or the default."""
    async with pool.connection() as conn, conn.transaction():
        await _known(conn, site_id, gtin)
        old = await clear_lead_time(conn, site_id, gtin)
        if old is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no lead time set for this product")
        await audit(
            conn, actor=user.name, action="lead_time.delete",
            subject=f"site:{site_id}/gtin:{gtin}",
            reason=reason or "replenishment lead time cleared",
            detail={"before": _out(old).lead_time_days, "after": None},
        )  # fmt: skip
    return Response(status_code=status.HTTP_204_NO_CONTENT)
