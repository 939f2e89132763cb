"""Schemathesis against this area's endpoints of a real ``coldtrace cloud serve``: no 5xx.

Runs as an admin (admin may do everything) so generated requests reach validation and the
handlers, on a database with master data, a lot and an open ASN for them to hit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from cloud.auth.model import Role
from cloud.auth.service import add_user
from cloud.ledger.core import Draft, Movement, Place, Status
from cloud.ledger.service import ensure_lot, post
from tests.support.cloud_processes import serve
from tests.support.databases import DatabaseFactory
from tests.support.ledger_seed import DOCK, GTIN_A, seed

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OURS = (
    r"^/v1/(asns|receipts|ledger|lots/\{lot_id\}/disposition|counts|recalls|epcis|users|me|audit)"
)


async def _prepare(url: str) -> str:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        await seed(conn)
        lot = await ensure_lot(conn, gtin=GTIN_A, lot_number="L1", expiry=None)
        at = datetime(2026, 3, 1, tzinfo=UTC)
        await post(
            conn, [Draft(Movement.RECEIVE, lot, 5, at, "t", to=Place(DOCK, Status.AVAILABLE))]
        )
        token = await add_user(conn, "admin", Role.ADMIN)
        await conn.commit()
    return token


@pytest.fixture(scope="module")
def cloud(databases: DatabaseFactory) -> Iterator[tuple[str, str]]:
    url = databases.create("timescaledb")
    token = asyncio.run(_prepare(url))
    with serve(url, "--no-processor", "--no-scheduler") as process:
        yield process.base_url, token


def _checker(token: str, strategy: Any, calls: list[int]) -> Any:
    @given(case=strategy)
    @settings(
        max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    def check(case: Any) -> None:
        response = case.call_and_validate(
            headers={"Authorization": f"Bearer {token}"}, checks=[not_a_server_error]
        )
        calls.append(response.status_code)
        assert response.status_code < 500, (case.path, case.body, response.text)

    return check


def test_no_input_makes_the_ledger_endpoints_fail(cloud: tuple[str, str]) -> None:
    base, token = cloud
    schema = schemathesis.openapi.from_url(base + "/openapi.json").include(path_regex=OURS)
    calls: dict[str, list[int]] = {}
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]  # an invalid schema fails the test
        name = f"{operation.method.upper()} {operation.path}"
        calls[name] = []
        _checker(token, operation.as_strategy(), calls[name])()
    assert {"POST /v1/asns", "POST /v1/ledger/movements", "POST /v1/counts"} <= set(calls)
    assert all(calls.values()), calls
