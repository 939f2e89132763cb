"""Gateway administration over HTTP (admin): register, rotate the token, move, disable.

``POST /v1/gateways`` answers the new gateway's token once (only its hash is kept), as does
``POST /v1/gateways/{id}/token``, which replaces it (the old one stops working at commit).
``PUT /v1/gateways/{id}/site`` registers it to another site; ``POST /v1/gateways/{id}/disable``
switches it off (its batches answer 401 from then on; what it sent stays). Every change is
audited through ``cloud.admin.gateways`` with the reason from ``X-Coldtrace-Reason``.
"""

from __future__ import annotations

from typing import Annotated

import psycopg
from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field

from cloud.admin.gateways import disable_gateway, move_gateway, register_gateway, rotate_gateway
from cloud.api.asns import Reason
from cloud.api.deps import IdPath, Pool
from cloud.auth.deps import Admin
from protocols.records import ID_PATTERN

router = APIRouter(prefix="/v1", tags=["devices"])

GatewayId = Annotated[str, Field(min_length=1, max_length=128, pattern=ID_PATTERN)]


class GatewayIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    gateway_id: GatewayId
    site_id: GatewayId | None = None
    """The site it writes for; None: only devices bound to no site."""


class GatewaySiteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    site_id: GatewayId


class GatewayTokenOut(BaseModel):
    gateway_id: str
    site_id: str | None
    token: str
    """Shown once: only its hash is kept. Put it in the agent's ``COLDTRACE_EDGE_TOKEN``."""


async def _site_of(pool: Pool, gateway_id: str) -> str | None:
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT site_id FROM gateways WHERE gateway_id = %s", (gateway_id,)
        )
        row = await cur.fetchone()
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no gateway {gateway_id!r}")
    return None if row[0] is None else str(row[0])


@router.post("/gateways", status_code=status.HTTP_201_CREATED)
async def create_gateway(
    body: GatewayIn, pool: Pool, admin: Admin, reason: Reason = None
) -> GatewayTokenOut:
    """Registers a gateway; an existing id is 409, an unknown site 422."""
    try:
        async with pool.connection() as conn:
            token = await register_gateway(
                conn, body.gateway_id, body.site_id, actor=admin.name, reason=reason
            )
    except psycopg.errors.UniqueViolation as err:
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"gateway {body.gateway_id!r} already exists"
        ) from err
    except psycopg.errors.ForeignKeyViolation as err:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, f"no site {body.site_id!r}"
        ) from err
    return GatewayTokenOut(gateway_id=body.gateway_id, site_id=body.site_id, token=token)


@router.post("/gateways/{gateway_id}/token", status_code=status.HTTP_201_CREATED)
async def rotate_token(
    gateway_id: IdPath, pool: Pool, admin: Admin, reason: Reason = None
) -> GatewayTokenOut:
    """A new token for the gateway; the old one stops working."""
    site = await _site_of(pool, gateway_id)
    try:
        async with pool.connection() as conn:
            token = await rotate_gateway(conn, gateway_id, actor=admin.name, reason=reason)
    except LookupError as err:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(err)) from err
    return GatewayTokenOut(gateway_id=gateway_id, site_id=site, token=token)


@router.put("/gateways/{gateway_id}/site")
async def put_gateway_site(
    gateway_id: IdPath, body: GatewaySiteIn, pool: Pool, admin: Admin, reason: Reason = None
) -> dict[str, str | None]:
    """Registers the gateway to another site; answers the site it had."""
    try:
        async with pool.connection() as conn:
            before = await move_gateway(
                conn, gateway_id, body.site_id, actor=admin.name, reason=reason
            )
    except LookupError as err:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(err)) from err
    except psycopg.errors.ForeignKeyViolation as err:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, f"no site {body.site_id!r}"
        ) from err
    return {"gateway_id": gateway_id, "site_id": body.site_id, "previous_site_id": before}


@router.post("/gateways/{gateway_id}/disable")
async def post_disable(
    gateway_id: IdPath, pool: Pool, admin: Admin, reason: Reason = None
) -> dict[str, object]:
    """Switches the gateway off; 404 when there is no enabled gateway of that id."""
    async with pool.connection() as conn:
        done = await disable_gateway(conn, gateway_id, actor=admin.name, reason=reason)
    if not done:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no enabled gateway {gateway_id!r}")
    return {"gateway_id": gateway_id, "disabled": True}
