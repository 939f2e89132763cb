"""``/v1/sites``, ``/v1/locations``, ``/v1/products``, ``/v1/lots``, ``/v1/sensors``: master data.

An administrator writes (``PUT`` creates or updates and answers 201 or 200; ``POST /v1/lots``
only creates); viewers, operators and QA read. Every write is audited with the user, the reason
(header ``X-Coldtrace-Reason``) and the values before and after. Lot status is not writable
here: only the ledger changes it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Response, status
from psycopg import AsyncConnection
from psycopg.rows import TupleRow
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from cloud.api.asns import Reason
from cloud.api.deps import Pool
from cloud.api.ledger import LABEL, Label, LabelQuery
from cloud.api.readings import SensorId
from cloud.auth.deps import Admin, Viewer
from cloud.auth.service import audit
from cloud.ledger.instant import Instant
from cloud.masterdata import InvalidMasterDataError, MasterDataConflictError, MasterDataError
from cloud.masterdata.sensors import SensorMount, list_sensors, mount_history, mount_sensor
from cloud.masterdata.store import (
    Location,
    Product,
    Site,
    create_lot,
    list_locations,
    list_lots,
    list_products,
    list_sites,
    put_location,
    put_product,
    put_site,
)
from cloud.masterdata.values import parse_duration, valid_gtin14, valid_timezone

router = APIRouter(prefix="/v1", tags=["master data"])

Name = Annotated[str, Field(min_length=1, max_length=200, pattern=LABEL)]
IdPath = Annotated[str, Path(min_length=1, max_length=128, pattern=LABEL)]
GtinPath = Annotated[str, Path(min_length=14, max_length=14)]
Gtin = Annotated[str, AfterValidator(valid_gtin14)]
LocationKind = Literal[
    "zone", "fridge", "freezer", "room", "dock_door", "shelf", "transit", "other"
]
LotStatus = Literal["available", "quarantined", "released", "rejected", "recalled", "expired"]


def _iso_duration(value: object) -> timedelta:
    if not isinstance(value, str):
        raise InvalidMasterDataError("expected an ISO 8601 duration string such as PT12H")
    return parse_duration(value)


Budget = Annotated[timedelta, BeforeValidator(_iso_duration)]


class _In(BaseModel):
    # an unknown field is refused rather than ignored: a "status" sent with a lot must not look
    # as if it had been applied
    model_config = ConfigDict(extra="forbid")


class SiteIn(_In):
    name: Name
    timezone: Annotated[str, Field(max_length=64), AfterValidator(valid_timezone)] = "UTC"


class SiteOut(SiteIn):
    site_id: str


class LocationIn(_In):
    site_id: Label
    parent_id: Label | None = None
    kind: LocationKind
    name: Name
    profile_id: Label | None = None


class LocationOut(LocationIn):
    location_id: str


class ProductIn(_In):
    name: Name
    profile_id: Label
    stability_budget: Budget = Field(
        description="cumulative time out of range the product tolerates, ISO 8601 (PT12H, P14D)"
    )


class ProductOut(BaseModel):
    gtin: str
    name: str
    profile_id: str
    stability_budget: timedelta


class LotIn(_In):
    gtin: Gtin
    # GS1 AI (10): up to 20 characters
    lot_number: Annotated[str, Field(min_length=1, max_length=20, pattern=LABEL)]
    expiry: date | None


class LotOut(BaseModel):
    lot_id: int
    gtin: str
    lot_number: str
    expiry: date | None
    status: LotStatus
    created_at: datetime


class SensorIn(_In):
    location_id: Label | None = Field(description="where it is mounted; null to unmount")
    mounted_at: Instant
    description: Annotated[str, Field(max_length=500, pattern=LABEL)] | None = None


class SensorOut(BaseModel):
    sensor_id: str
    location_id: str | None
    mounted_at: datetime | None
    description: str | None


@asynccontextmanager
async def _writing(pool: Pool) -> AsyncIterator[AsyncConnection[TupleRow]]:
    """One transaction; the package's refusals become 422 (bad value) or 409 (conflict)."""
    try:
        async with pool.connection() as conn, conn.transaction():
            yield conn
    except MasterDataConflictError as err:
        raise HTTPException(status.HTTP_409_CONFLICT, str(err)) from err
    except MasterDataError as err:  # invalid value or unknown reference in the body
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(err)) from err


async def _audit(
    conn: AsyncConnection[TupleRow], actor: str, action: str, subject: str, *,
    reason: str | None, before: BaseModel | None, after: BaseModel,
) -> None:  # fmt: skip
    detail: dict[str, Any] = {
        "before": before.model_dump(mode="json") if before else None,
        "after": after.model_dump(mode="json"),
    }
    await audit(conn, actor=actor, action=action, subject=subject,
                reason=reason or "master data maintenance", detail=detail)  # fmt: skip


def _created(response: Response, before: object | None) -> None:
    response.status_code = status.HTTP_200_OK if before else status.HTTP_201_CREATED


@router.put("/sites/{site_id}", responses={201: {"description": "created"}})
async def put_site_route(
    site_id: IdPath, body: SiteIn, *, pool: Pool, user: Admin, response: Response,
    reason: Reason = None,
) -> SiteOut:  # fmt: skip
    """Creates a site or updates its name and IANA time zone."""
    async with _writing(pool) as conn:
        before = await put_site(conn, Site(site_id, body.name, body.timezone))
        out = SiteOut(site_id=site_id, **body.model_dump())
        old = SiteOut(**before.__dict__) if before else None
        await _audit(
            conn, user.name, "site.put", f"site:{site_id}", reason=reason, before=old, after=out
        )
    _created(response, before)
    return out


@router.get("/sites")
async def get_sites(pool: Pool, _: Viewer) -> list[SiteOut]:
    async with pool.connection() as conn:
        return [SiteOut(**s.__dict__) for s in await list_sites(conn)]


@router.put("/locations/{location_id}", responses={201: {"description": "created"}})
async def put_location_route(
    location_id: IdPath, body: LocationIn, *, pool: Pool, user: Admin, response: Response,
    reason: Reason = None,
) -> LocationOut:  # fmt: skip
    """Creates or updates a location; the parent must be in the same site and not inside it."""
    async with _writing(pool) as conn:
        before = await put_location(conn, Location(location_id=location_id, **body.model_dump()))
        out = LocationOut(location_id=location_id, **body.model_dump())
        old = LocationOut(**before.__dict__) if before else None
        await _audit(
            conn,
            user.name,
            "location.put",
            f"location:{location_id}",
            reason=reason,
            before=old,
            after=out,
        )
    _created(response, before)
    return out


@router.get("/locations")
async def get_locations(pool: Pool, _: Viewer, site_id: LabelQuery = None) -> list[LocationOut]:
    async with pool.connection() as conn:
        return [LocationOut(**loc.__dict__) for loc in await list_locations(conn, site_id)]


@router.put("/products/{gtin}", responses={201: {"description": "created"}})
async def put_product_route(
    gtin: GtinPath, body: ProductIn, *, pool: Pool, user: Admin, response: Response,
    reason: Reason = None,
) -> ProductOut:  # fmt: skip
    """Creates or updates a product (GTIN-14 with its GS1 check digit)."""
    async with _writing(pool) as conn:
        before = await put_product(conn, Product(gtin=gtin, **body.model_dump()))
        out = ProductOut(gtin=gtin, **body.model_dump())
        old = ProductOut(**before.__dict__) if before else None
        await _audit(
            conn, user.name, "product.put", f"product:{gtin}", reason=reason, before=old, after=out
        )
    _created(response, before)
    return out


@router.get("/products")
async def get_products(pool: Pool, _: Viewer) -> list[ProductOut]:
    async with pool.connection() as conn:
        return [ProductOut(**p.__dict__) for p in await list_products(conn)]


@router.post("/lots", status_code=status.HTTP_201_CREATED)
async def post_lot(body: LotIn, pool: Pool, user: Admin, reason: Reason = None) -> LotOut:
    """Registers a lot of a known product; an existing (gtin, lot number) answers 409."""
    async with _writing(pool) as conn:
        lot = LotOut(**(await create_lot(conn, **body.model_dump())).__dict__)
        await _audit(
            conn,
            user.name,
            "lot.create",
            f"lot:{lot.lot_id}",
            reason=reason,
            before=None,
            after=lot,
        )
    return lot


@router.get("/lots")
async def get_lots(
    pool: Pool,
    _: Viewer,
    gtin: Annotated[str | None, Query(min_length=14, max_length=14, pattern=r"^[0-9]+$")] = None,
    lot_status: Annotated[LotStatus | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> list[LotOut]:
    async with pool.connection() as conn:
        found = await list_lots(conn, gtin=gtin, status=lot_status, limit=limit)
    return [LotOut(**lot.__dict__) for lot in found]


@router.put("/sensors/{sensor_id:path}", responses={201: {"description": "created"}})
async def put_sensor_route(
    sensor_id: SensorId, body: SensorIn, *, pool: Pool, user: Admin, response: Response,
    reason: Reason = None,
) -> SensorOut:  # fmt: skip
    """Mounts a sensor at a location from ``mounted_at`` on (null location: unmounted).

    Every mount is kept (``GET /v1/sensors/{id}/mounts``) and in the audit trail; readings are
    judged at the mount in force at their time. A mount earlier than the current one is 409.
    """
    async with _writing(pool) as conn:
        before = await mount_sensor(conn, SensorMount(sensor_id=sensor_id, **body.model_dump()))
        out = SensorOut(sensor_id=sensor_id, **body.model_dump())
        old = SensorOut(**before.__dict__) if before else None
        await _audit(
            conn,
            user.name,
            "sensor.mount",
            f"sensor:{sensor_id}",
            reason=reason,
            before=old,
            after=out,
        )
    _created(response, before)
    return out


class MountOut(BaseModel):
    valid_from: datetime | None
    """None: since the sensor was first known (registered without a mount time)."""
    location_id: str | None
    """None: unmounted from ``valid_from`` on."""
    recorded_at: datetime


@router.get("/sensors/{sensor_id:path}/mounts")
async def get_sensor_mounts(sensor_id: SensorId, pool: Pool, _: Viewer) -> list[MountOut]:
    """Where the sensor has been mounted, oldest first; each reading is judged at the mount
    in force at its time. 404 for a sensor never mounted."""
    async with pool.connection() as conn:
        found = await mount_history(conn, sensor_id)
    if not found:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no sensor {sensor_id!r}")
    return [MountOut(**m.__dict__) for m in found]


@router.get("/sensors")
async def get_sensors(pool: Pool, _: Viewer, location_id: LabelQuery = None) -> list[SensorOut]:
    async with pool.connection() as conn:
        return [SensorOut(**s.__dict__) for s in await list_sensors(conn, location_id)]
