"""The cloud application in-process for ledger, receiving, recall and auth API tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

import httpx
import psycopg

from cloud.accounts.settings import AccountSettings
from cloud.app import create_app
from cloud.auth.model import Role
from cloud.auth.service import add_user
from cloud.config import CloudSettings
from cloud.ingest.admission import AdmissionSettings
from tests.support.ledger_seed import seed


@dataclass
class Api:
    client: httpx.AsyncClient
    tokens: dict[Role, str]

    def as_(self, role: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


@asynccontextmanager
async def api(database_url: str, *, accounts: AccountSettings | None = None) -> AsyncIterator[Api]:
    """Seeded master data, one user per role, and a client on the app (no processor, no jobs)."""
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        await seed(conn)
        tokens = {role: await add_user(conn, f"{role.value}-1", role) for role in Role}
        await conn.commit()
    # a ten-year backlog horizon, as tests.support.cloud_ingest: test data carries 2026 dates
    settings = CloudSettings(
        database_url=database_url, run_processor=False, run_scheduler=False,
        accounts=accounts or AccountSettings(),
        admission=AdmissionSettings(backlog_horizon=timedelta(days=3650)),
    )  # fmt: skip
    app = create_app(settings)
    pool = app.state.pool
    await pool.open(wait=True)
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://coldtrace") as client:
            yield Api(client, tokens)
    finally:
        await pool.close()
