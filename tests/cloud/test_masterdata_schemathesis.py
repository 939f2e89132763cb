"""Schemathesis against the master-data endpoints of a real ``coldtrace cloud serve``: no 5xx.

Runs as an admin so generated requests reach validation and the handlers, on a database with
the ledger tests' master data for them to hit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from cloud.auth.model import Role
from cloud.auth.service import add_user
from tests.support.cloud_processes import serve
from tests.support.databases import DatabaseFactory
from tests.support.ledger_seed import seed

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OURS = r"^/v1/(sites|locations|products|lots|sensors)(/\{[a-z_]+(:path)?\})?$"


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


def _run(token: str, strategy: Any) -> list[int]:
    codes: list[int] = []

    @given(case=strategy)
    @settings(
        max_examples=30, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    def check(case: Any) -> None:
        response = case.call_and_validate(
            headers={"Authorization": f"Bearer {token}"}, checks=[not_a_server_error]
        )
        codes.append(response.status_code)
        assert response.status_code < 500, (case.path, case.body, response.text)

    check()
    return codes


def test_no_input_makes_the_master_data_endpoints_fail(cloud: tuple[str, str]) -> None:
    base, token = cloud
    schema = schemathesis.openapi.from_url(base + "/openapi.json").include(path_regex=OURS)
    calls: dict[str, list[int]] = {}
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]  # an invalid schema fails the test
        calls[f"{operation.method.upper()} {operation.path}"] = _run(token, operation.as_strategy())
    assert set(calls) == {
        "PUT /v1/sites/{site_id}", "GET /v1/sites", "PUT /v1/locations/{location_id}",
        "GET /v1/locations", "PUT /v1/products/{gtin}", "GET /v1/products", "POST /v1/lots",
        "GET /v1/lots", "PUT /v1/sensors/{sensor_id}", "GET /v1/sensors",
    }  # fmt: skip
    assert all(calls.values()), calls
