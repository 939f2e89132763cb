"""Processing streams: which are behind or stalled, and setting a stuck batch aside (admin).

``GET /v1/streams`` lists the streams that are behind, failing or stalled, with the error.
``POST /v1/streams/{gateway_id}/set-aside`` (admin) sets aside the batch the stream is failing
on, named explicitly, with a reason (``cloud.processing.streams.set_aside``: kept as a
quarantined batch, audited, alerted); later batches then go on.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field, field_validator

from cloud.api.deps import IdPath, IdQuery, Pool
from cloud.auth.deps import Admin, require_role
from cloud.auth.model import Role
from cloud.processing.streams import (
    NoSuchStreamError,
    StreamAdminError,
    StreamBusyError,
    set_aside,
    stream_states,
)

router = APIRouter(tags=["processing"])


class StreamOut(BaseModel):
    gateway_id: str
    boot_id: UUID
    stored_through: int
    processed_through: int
    pending_batches: int
    oldest_pending_at: datetime | None
    failures: int
    """Failures in a row of the batch the stream waits on."""
    last_error: str | None
    failing_batch_id: int | None
    failing_since: datetime | None
    stalled_since: datetime | None
    """Set once ``failures`` reached the stall threshold; cleared when the batch is processed or
    set aside."""
    retry_at: datetime | None


class SetAsideIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    batch_id: int = Field(ge=1, le=2**63 - 1)
    """The batch the stream is failing on (``failing_batch_id``), named so no other is lost."""
    reason: str = Field(min_length=1, max_length=2000)
    boot_id: UUID | None = None
    """Needed only when several of the gateway's streams are failing."""

    @field_validator("reason")
    @classmethod
    def _storable(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a reason is required")
        if "\x00" in value or any(0xD800 <= ord(c) <= 0xDFFF for c in value):
            raise ValueError("the reason holds characters PostgreSQL cannot store")
        return value


class SetAsideOut(BaseModel):
    gateway_id: str
    boot_id: UUID
    batch_id: int
    first_seq: int
    last_seq: int
    record_count: int
    failures: int
    last_error: str | None


@router.get(
    "/v1/streams",
    response_model=list[StreamOut],
    dependencies=[require_role(Role.VIEWER, Role.OPERATOR, Role.QA)],
)
async def list_streams(
    pool: Pool,
    gateway_id: IdQuery = None,
    stalled: Annotated[bool, Query()] = False,
) -> list[StreamOut]:
    """Streams behind, failing or stalled (idle ones are left out), stalled first."""
    async with pool.connection() as conn:
        states = await stream_states(conn, gateway_id=gateway_id, stalled_only=stalled)
    return [StreamOut.model_validate(s, from_attributes=True) for s in states]


@router.post(
    "/v1/streams/{gateway_id:path}/set-aside",
    response_model=SetAsideOut,
    responses={404: {"description": "no such stream"}, 409: {"description": "refused"},
               503: {"description": "a processor holds the stream; retry"}},
)  # fmt: skip
async def set_batch_aside(
    gateway_id: IdPath, body: SetAsideIn, pool: Pool, user: Admin
) -> SetAsideOut:
    """Sets aside the batch the gateway's stream is failing on, so later batches go on."""
    try:
        async with pool.connection() as conn:
            done = await set_aside(
                conn,
                gateway_id,
                boot_id=body.boot_id,
                batch_id=body.batch_id,
                reason=body.reason,
                actor=user.name,
            )
    except NoSuchStreamError as err:
        raise HTTPException(404, str(err)) from err
    except StreamBusyError as err:
        raise HTTPException(503, str(err), headers={"Retry-After": "5"}) from err
    except StreamAdminError as err:
        raise HTTPException(409, str(err)) from err
    return SetAsideOut.model_validate(done, from_attributes=True)
