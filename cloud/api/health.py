"""``/healthz``: is the database reachable, which storage mode is in force, is processing stuck.

A stalled processing stream (its next batch failed ``stall_after`` times in a row) makes the
status ``degraded`` with the stream and its error listed; the answer stays 200, because the
service itself works and a load balancer must not take it out of rotation for a bad batch.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Literal
from uuid import UUID

from fastapi import APIRouter, Response
from psycopg import Error as PsycopgError
from psycopg_pool import PoolTimeout
from pydantic import BaseModel

from cloud.api.deps import Pool
from cloud.processing.streams import stream_states
from cloud.storage.capabilities import StorageMode, probe

router = APIRouter(tags=["health"])


class StalledStreamOut(BaseModel):
    gateway_id: str
    boot_id: UUID
    stalled_since: datetime
    batch_id: int | None
    failures: int
    error: str | None


class HealthOut(BaseModel):
    status: Literal["ok", "degraded", "unavailable"]
    database: Literal["reachable", "unreachable"]
    storage: StorageMode | None
    timescaledb_version: str | None
    stalled_streams: list[StalledStreamOut] = []
    """Processing streams that stopped on a failing batch (see ``GET /v1/streams``)."""
    detail: str | None = None


@router.get("/healthz", response_model=HealthOut)
async def healthz(pool: Pool, response: Response) -> HealthOut:
    try:
        async with asyncio.timeout(3), pool.connection(timeout=2.0) as conn:
            caps = await probe(conn)
            stalled = await stream_states(conn, stalled_only=True)
    except (PsycopgError, PoolTimeout, TimeoutError) as err:
        response.status_code = 503
        return HealthOut(
            status="unavailable",
            database="unreachable",
            storage=None,
            timescaledb_version=None,
            detail=type(err).__name__,
        )
    return HealthOut(
        status="degraded" if stalled else "ok",
        database="reachable",
        storage=caps.mode,
        timescaledb_version=caps.extension_version,
        stalled_streams=[
            StalledStreamOut(
                gateway_id=s.gateway_id, boot_id=s.boot_id, stalled_since=s.stalled_since,
                batch_id=s.failing_batch_id, failures=s.failures, error=s.last_error,
            )
            for s in stalled
            if s.stalled_since is not None
        ],
    )  # fmt: skip
