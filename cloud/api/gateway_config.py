"""Gateway configuration routes: what a gateway runs, served to it and shown to admins.

For the gateway (its token, as for ``POST /v1/batches``):

- ``GET /v1/gateway/config``: the configuration built from master data, with an ``ETag``;
  ``If-None-Match`` with the current ETag answers 304, so the agent can poll cheaply.
- ``POST /v1/gateway/config/report``: the version the agent applied, or refused and why.

For an administrator (every change audited, subject ``gateway:<id>``):

- ``GET /v1/gateways/{id}/config``: the same configuration, passwords masked, and the reports;
- ``PUT``/``DELETE /v1/gateways/{id}/sources/{name}``: an OPC-UA server, MQTT broker or LLRP
  reader the gateway reads;
- ``PUT /v1/gateways/{id}/sources/{name}/points/{sensor_id}``: where that sensor is read (NodeId
  or topic and payload decoder); ``DELETE /v1/sensor-points/{sensor_id}``;
- ``PUT /v1/gateways/{id}/doors/{door_id}``: a dock door on one of its LLRP readers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Header, HTTPException, Request, Response, status
from psycopg import AsyncConnection
from psycopg.rows import TupleRow
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cloud.api.asns import Reason
from cloud.api.deps import IdPath, Pool
from cloud.api.documents import body_schema
from cloud.api.readings import SensorId
from cloud.auth.deps import Admin
from cloud.auth.service import audit
from cloud.gateway_config import (
    GatewayConfigError,
    InvalidGatewayConfigError,
    UnknownGatewayError,
    store,
)
from cloud.gateway_config.build import DoorRow, PointRow, SourceRow, masked
from cloud.ingest import IngestError
from cloud.ingest.auth import GatewayIdentity, authenticate, bearer_token
from protocols.gateway_config import ConfigReport, GatewayConfigDocument

router = APIRouter(prefix="/v1", tags=["gateway configuration"])

M = TypeVar("M", bound=BaseModel)


async def gateway_identity(request: Request, pool: Pool) -> GatewayIdentity:
    """The enabled gateway owning the bearer token, or 401."""
    try:
        token = bearer_token(request.headers.get("authorization"))
        async with pool.connection() as conn:
            return await authenticate(conn, token)
    except IngestError as err:
        raise HTTPException(err.status, err.message, {"WWW-Authenticate": "Bearer"}) from err


@asynccontextmanager
async def transaction(pool: Pool) -> AsyncIterator[AsyncConnection[TupleRow]]:
    try:
        async with pool.connection() as conn, conn.transaction():
            yield conn
    except UnknownGatewayError as err:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(err)) from err
    except InvalidGatewayConfigError as err:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(err)) from err
    except GatewayConfigError as err:
        raise HTTPException(status.HTTP_409_CONFLICT, str(err)) from err


@router.get(
    "/gateway/config",
    response_model=GatewayConfigDocument,
    responses={304: {"description": "unchanged since the ETag in If-None-Match"}},
)
async def get_own_config(
    request: Request, pool: Pool, response: Response,
    if_none_match: Annotated[str | None, Header()] = None,
) -> GatewayConfigDocument | Response:  # fmt: skip
    """The calling gateway's configuration (its token), with an ``ETag``."""
    identity = await gateway_identity(request, pool)
    async with transaction(pool) as conn:
        found = await store.current(conn, identity.gateway_id)
    etag = found.document.etag_for(found.digest)
    if if_none_match is not None and etag in {t.strip() for t in if_none_match.split(",")}:
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers={"ETag": etag})
    response.headers["ETag"] = etag
    response.headers["Cache-Control"] = "no-store"  # it carries source credentials
    return found.document


async def gateway_body(request: Request, model: type[M]) -> M:
    """The JSON body as ``model``, read only after the token was checked (as ingest does: an
    unknown caller never gets a body parsed), 422 with pydantic's errors otherwise."""
    try:
        return model.model_validate_json(await request.body())
    except ValidationError as err:
        detail = err.errors(include_url=False, include_context=False)
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail) from err


@router.post(
    "/gateway/config/report",
    status_code=status.HTTP_204_NO_CONTENT,
    openapi_extra=body_schema(ConfigReport),
)
async def post_report(request: Request, pool: Pool) -> None:
    """The calling gateway says which version it runs, or which it refused and why."""
    identity = await gateway_identity(request, pool)
    body = await gateway_body(request, ConfigReport)
    async with transaction(pool) as conn:
        await store.record_report(conn, identity.gateway_id, body)


class ConfigStatusOut(BaseModel):
    gateway_id: str
    version: int
    etag: str
    sections: dict[str, Any]
    """As served, with passwords shown as ``***``."""
    applied_version: int | None
    applied_at: datetime | None
    refused_version: int | None
    refused_reason: str | None
    refused_at: datetime | None
    in_step: bool
    """The gateway reported applying the current version."""


@router.get("/gateways/{gateway_id}/config")
async def get_config(gateway_id: IdPath, pool: Pool, _: Admin) -> ConfigStatusOut:
    async with transaction(pool) as conn:
        found = await store.current(conn, gateway_id)
    doc = found.document
    return ConfigStatusOut(
        gateway_id=gateway_id, version=doc.version, etag=doc.etag_for(found.digest),
        sections=masked(doc.sections), applied_version=found.applied_version,
        applied_at=found.applied_at, refused_version=found.refused_version,
        refused_reason=found.refused_reason, refused_at=found.refused_at,
        in_step=found.applied_version == doc.version,
    )  # fmt: skip


class SourceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["opcua", "mqtt", "llrp"]
    settings: dict[str, Any] = Field(
        default_factory=dict,
        description="the agent's settings of that source (endpoint, broker_url, host, ...)",
    )
    credentials: dict[str, str] = Field(default_factory=dict, description="username, password")


class SourceOut(BaseModel):
    name: str
    kind: str
    settings: dict[str, Any]
    has_credentials: bool


def _source_out(row: SourceRow) -> SourceOut:
    return SourceOut(name=row.name, kind=row.kind, settings=row.settings,
                     has_credentials=bool(row.credentials))  # fmt: skip


async def _audit(
    conn: AsyncConnection[TupleRow], actor: str, action: str, gateway_id: str, *,
    reason: str | None, before: Any, after: Any,
) -> None:  # fmt: skip
    detail = {"before": before, "after": after}
    await audit(conn, actor=actor, action=action, subject=f"gateway:{gateway_id}",
                reason=reason or "gateway configuration", detail=detail)  # fmt: skip


@router.put("/gateways/{gateway_id}/sources/{name}")
async def put_source(
    gateway_id: IdPath, name: IdPath, body: SourceIn, *, pool: Pool, user: Admin,
    response: Response, reason: Reason = None,
) -> SourceOut:  # fmt: skip
    row = SourceRow(name, body.kind, body.settings, dict(body.credentials))
    async with transaction(pool) as conn:
        before = await store.put_source(conn, gateway_id, row)
        old = _source_out(before).model_dump() if before else None
        out = _source_out(row)
        await _audit(
            conn,
            user.name,
            "gateway.source",
            gateway_id,
            reason=reason,
            before=old,
            after=out.model_dump(),
        )
    response.status_code = status.HTTP_200_OK if before else status.HTTP_201_CREATED
    return out


@router.delete("/gateways/{gateway_id}/sources/{name}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_source(
    gateway_id: IdPath, name: IdPath, pool: Pool, user: Admin, reason: Reason = None
) -> None:
    async with transaction(pool) as conn:
        before = await store.delete_source(conn, gateway_id, name)
        old = _source_out(before).model_dump()
        await _audit(
            conn,
            user.name,
            "gateway.source.delete",
            gateway_id,
            reason=reason,
            before=old,
            after=None,
        )


class PointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    address: str = Field(min_length=1, max_length=1000, description="OPC-UA NodeId or topic")
    payload: dict[str, Any] = Field(
        default_factory=dict, description="MQTT: the decoder (format and its options)"
    )


class PointOut(PointIn):
    sensor_id: str
    source_name: str


@router.put("/gateways/{gateway_id}/sources/{name}/points/{sensor_id:path}")
async def put_point(
    gateway_id: IdPath, name: IdPath, sensor_id: SensorId, body: PointIn, *, pool: Pool,
    user: Admin, response: Response, reason: Reason = None,
) -> PointOut:  # fmt: skip
    row = PointRow(sensor_id, name, body.address, body.payload)
    out = PointOut(sensor_id=sensor_id, source_name=name, **body.model_dump())
    async with transaction(pool) as conn:
        before = await store.put_point(conn, gateway_id, row)
        old = before.__dict__ if before else None
        await _audit(
            conn,
            user.name,
            "gateway.point",
            gateway_id,
            reason=reason,
            before=old,
            after=out.model_dump(),
        )
    response.status_code = status.HTTP_200_OK if before else status.HTTP_201_CREATED
    return out


@router.delete("/sensor-points/{sensor_id:path}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_point(sensor_id: SensorId, pool: Pool, user: Admin, reason: Reason = None) -> None:
    async with transaction(pool) as conn:
        cur = await conn.execute(
            "SELECT gateway_id FROM sensor_points WHERE sensor_id = %s", (sensor_id,)
        )
        row = await cur.fetchone()
        before = await store.delete_point(conn, sensor_id)
        gateway = str(row[0]) if row else ""
        await _audit(conn, user.name, "gateway.point.delete", gateway, reason=reason,
                     before=before.__dict__, after=None)  # fmt: skip


class DoorIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reader: str = Field(min_length=1, max_length=128, description="an LLRP source's name")
    outside_antennas: list[Annotated[int, Field(ge=1, le=64)]] = Field(min_length=1)
    inside_antennas: list[Annotated[int, Field(ge=1, le=64)]] = Field(min_length=1)
    settings: dict[str, Any] = Field(
        default_factory=dict, description="rssi_threshold, min_reads, quiet_gap, ..."
    )


@router.put("/gateways/{gateway_id}/doors/{door_id}")
async def put_door(
    gateway_id: IdPath, door_id: IdPath, body: DoorIn, *, pool: Pool, user: Admin,
    response: Response, reason: Reason = None,
) -> DoorIn:  # fmt: skip
    row = DoorRow(door_id, body.reader, tuple(body.outside_antennas),
                  tuple(body.inside_antennas), body.settings)  # fmt: skip
    async with transaction(pool) as conn:
        before = await store.put_door(conn, gateway_id, row)
        old = before.__dict__ if before else None
        await _audit(conn, user.name, "gateway.door", gateway_id, reason=reason, before=old,
                     after={"door_id": door_id, **body.model_dump()})  # fmt: skip
    response.status_code = status.HTTP_200_OK if before else status.HTTP_201_CREATED
    return body
