"""Discovery: devices that report but are mounted nowhere, and OPC-UA browsing via a gateway.

- ``GET /v1/discovery/unassigned``: sensors and RFID readers seen but not mounted (readers);
- ``POST /v1/discovery/mount``: mounts one (admin; a sensor through the master-data mount,
  audited ``sensor.mount``; a reader by its location, audited ``reader.mount``);
- ``POST /v1/gateways/{id}/browse``: asks the gateway to browse one of its OPC-UA sources
  (admin); ``GET /v1/gateways/{id}/browse/{request_id}``: the nodes once it answered;
- ``GET /v1/gateway/browse-requests`` and ``POST /v1/gateway/browse-requests/{request_id}``:
  the agent's side (gateway token).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field

from cloud.api.asns import Reason
from cloud.api.deps import IdPath, Pool
from cloud.api.documents import body_schema
from cloud.api.gateway_config import gateway_body, gateway_identity, transaction
from cloud.auth.deps import Admin, Viewer
from cloud.gateway_config import browse, discovery
from cloud.ledger.instant import Instant
from protocols.gateway_config import BrowseAnswer, BrowseRequest
from protocols.records import ID_PATTERN

router = APIRouter(prefix="/v1", tags=["discovery"])


class UnassignedOut(BaseModel):
    device_id: str
    device_type: str
    gateway_id: str | None
    site_id: str | None
    last_seen_at: datetime | None
    last_state: str | None
    read_at: str | None


@router.get("/discovery/unassigned")
async def get_unassigned(
    pool: Pool, _: Viewer,
    site_id: Annotated[str | None, Query(pattern=ID_PATTERN, max_length=128)] = None,
) -> list[UnassignedOut]:  # fmt: skip
    """Sensors and readers that reported and are mounted nowhere, most recently seen first."""
    async with pool.connection() as conn:
        found = await discovery.list_unassigned(conn, site_id)
    return [UnassignedOut(**u.__dict__) for u in found]


class MountIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    device_id: str = Field(pattern=ID_PATTERN, max_length=128)
    location_id: str = Field(pattern=ID_PATTERN, max_length=128)
    mounted_at: Instant | None = None
    """A sensor's mount time (default: now); readers have no mount history."""


class MountOut(BaseModel):
    device_id: str
    device_type: str
    location_id: str
    previous_location_id: str | None


@router.post("/discovery/mount")
async def post_mount(body: MountIn, pool: Pool, user: Admin, reason: Reason = None) -> MountOut:
    """Mounts an unassigned sensor or reader at a location (one click on the admin page)."""
    async with transaction(pool) as conn:
        done = await discovery.mount_device(
            conn, body.device_id, body.location_id, mounted_at=body.mounted_at,
            actor=user.name, reason=reason,
        )  # fmt: skip
    return MountOut(**done.__dict__)


class BrowseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str = Field(pattern=ID_PATTERN, max_length=128, description="an OPC-UA source")
    start_node: str = Field(default=browse.OBJECTS_FOLDER, min_length=1, max_length=1000)
    depth: int = Field(default=3, ge=1, le=10)


class BrowseAsked(BaseModel):
    request_id: int


@router.post("/gateways/{gateway_id}/browse", status_code=status.HTTP_202_ACCEPTED)
async def post_browse(gateway_id: IdPath, body: BrowseIn, pool: Pool, user: Admin) -> BrowseAsked:
    """Asks the gateway to browse one of its OPC-UA servers; it answers on its next poll."""
    async with transaction(pool) as conn:
        made = await browse.ask(conn, gateway_id, body.source, start_node=body.start_node,
                                depth=body.depth, actor=user.name)  # fmt: skip
    return BrowseAsked(request_id=made)


class BrowseOut(BaseModel):
    request_id: int
    gateway_id: str
    source_name: str
    start_node: str
    depth: int
    requested_by: str
    requested_at: datetime
    taken_at: datetime | None
    answered_at: datetime | None
    nodes: list[dict[str, Any]] | None
    truncated: bool
    error: str | None


@router.get("/gateways/{gateway_id}/browse/{request_id}")
async def get_browse(gateway_id: IdPath, request_id: int, pool: Pool, _: Admin) -> BrowseOut:
    async with transaction(pool) as conn:
        found = await browse.status(conn, gateway_id, request_id)
    return BrowseOut(**found.__dict__)


@router.get("/gateway/browse-requests")
async def get_browse_requests(request: Request, pool: Pool) -> list[BrowseRequest]:
    """The calling gateway's open browse requests (with the source's settings)."""
    identity = await gateway_identity(request, pool)
    async with transaction(pool) as conn:
        return await browse.take(conn, identity.gateway_id)


@router.post(
    "/gateway/browse-requests/{request_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    openapi_extra=body_schema(BrowseAnswer),
)
async def post_browse_answer(request_id: int, request: Request, pool: Pool) -> None:
    identity = await gateway_identity(request, pool)
    body = await gateway_body(request, BrowseAnswer)
    async with transaction(pool) as conn:
        await browse.answer(conn, identity.gateway_id, request_id, body)
