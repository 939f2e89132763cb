"""Dependency aliases shared by the routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Query, Request
from psycopg import AsyncConnection
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

from cloud.config import CloudSettings
from protocols.records import ID_PATTERN


def get_pool(request: Request) -> AsyncConnectionPool[AsyncConnection[TupleRow]]:
    pool: AsyncConnectionPool[AsyncConnection[TupleRow]] = request.app.state.pool
    return pool


def get_settings(request: Request) -> CloudSettings:
    settings: CloudSettings = request.app.state.settings
    return settings


Pool = Annotated[AsyncConnectionPool[AsyncConnection[TupleRow]], Depends(get_pool)]
Settings = Annotated[CloudSettings, Depends(get_settings)]

# Identifiers in paths and queries follow the wire format's rule (no spaces, no control bytes):
# a NUL would otherwise reach PostgreSQL, which refuses it in text, as a 500.
IdPath = Annotated[str, Path(pattern=ID_PATTERN)]
IdQuery = Annotated[str | None, Query(pattern=ID_PATTERN)]
