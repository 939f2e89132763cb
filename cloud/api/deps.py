"""Dependency aliases shared by the routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from cloud.config import CloudSettings


def get_pool(request: Request) -> AsyncConnectionPool[AsyncConnection[object]]:
    pool: AsyncConnectionPool[AsyncConnection[object]] = request.app.state.pool
    return pool


def get_settings(request: Request) -> CloudSettings:
    settings: CloudSettings = request.app.state.settings
    return settings


Pool = Annotated[AsyncConnectionPool[AsyncConnection[object]], Depends(get_pool)]
Settings = Annotated[CloudSettings, Depends(get_settings)]
