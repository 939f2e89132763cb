"""Schemathesis against the cold-chain endpoints of a real ``coldtrace cloud serve``: no 5xx.

Profiles, excursions, alerts and lot exposure, as an admin (every role's view), on a database
with master data and stock for the handlers to reach.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import psycopg
import pytest

from cloud.auth.model import Role
from cloud.auth.service import add_user
from tests.support.cloud_processes import serve
from tests.support.databases import DatabaseFactory
from tests.support.fuzz import fuzz_operations
from tests.support.ledger_seed import seed

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OURS = r"^/v1/(profiles|excursions|alerts|lots/\{lot_id\}/exposure)"


async def _prepare(url: str) -> str:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        await seed(conn)
        token = await add_user(conn, "admin", Role.ADMIN)
        await conn.commit()
    return token


@pytest.fixture(scope="module")
def cloud(databases: DatabaseFactory) -> Iterator[tuple[str, str]]:
    url = databases.create("timescaledb")
    token = asyncio.run(_prepare(url))
    with serve(url, "--no-processor", "--no-scheduler") as process:
        yield process.base_url, token


def test_no_input_makes_the_cold_chain_endpoints_fail(cloud: tuple[str, str]) -> None:
    base, token = cloud
    calls = fuzz_operations(base, token, OURS)
    assert set(calls) >= {
        "GET /v1/profiles", "PUT /v1/profiles/{profile_id}", "GET /v1/excursions",
        "GET /v1/alerts", "POST /v1/alerts/{alert_id}/acknowledge",
        "GET /v1/lots/{lot_id}/exposure",
    }  # fmt: skip
    assert all(calls.values()), calls
