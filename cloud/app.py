"""The cloud service's FastAPI application, built from settings (no module-level state)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from cloud.api.registry import routers
from cloud.config import CloudSettings
from cloud.storage.database import make_pool


def create_app(settings: CloudSettings) -> FastAPI:
    pool = make_pool(
        str(settings.database_url),
        min_size=settings.pool_min_size,
        max_size=settings.pool_max_size,
        timeout=settings.pool_timeout,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # wait=False: the service starts (and /healthz answers 503) while the database is down.
        await pool.open(wait=False)
        try:
            yield
        finally:
            await pool.close()

    app = FastAPI(title="coldtrace", version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    app.state.pool = pool
    for router in routers():
        app.include_router(router)
    return app
