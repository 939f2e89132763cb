"""``/healthz``: is the database reachable, and which storage mode is in force."""

from __future__ import annotations

import asyncio
from typing import Literal

from fastapi import APIRouter, Response
from psycopg import Error as PsycopgError
from psycopg_pool import PoolTimeout
from pydantic import BaseModel

from cloud.api.deps import Pool
from cloud.storage.capabilities import StorageMode, probe

router = APIRouter(tags=["health"])


class HealthOut(BaseModel):
    status: Literal["ok", "unavailable"]
    database: Literal["reachable", "unreachable"]
    storage: StorageMode | None
    timescaledb_version: str | None
    detail: str | None = None


@router.get("/healthz", response_model=HealthOut)
async def healthz(pool: Pool, response: Response) -> HealthOut:
    try:
        async with asyncio.timeout(3), pool.connection(timeout=2.0) as conn:
            caps = await probe(conn)
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
        status="ok",
        database="reachable",
        storage=caps.mode,
        timescaledb_version=caps.extension_version,
    )
