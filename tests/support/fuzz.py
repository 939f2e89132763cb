"""Schemathesis driven by hypothesis directly (``schemathesis.pytest.from_fixture`` does not work
with pytest 9): every operation of a path subset, as one user, must never answer 5xx."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from cloud.auth.model import Role
from cloud.auth.service import add_user
from tests.support.cloud_processes import serve
from tests.support.databases import DatabaseFactory
from tests.support.ledger_seed import seed


async def _seed_with_admin(url: str) -> str:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        await seed(conn)
        token = await add_user(conn, "admin", Role.ADMIN)
        await conn.commit()
    return token


@contextmanager
def admin_cloud(databases: DatabaseFactory) -> Iterator[tuple[str, str]]:
    """``cloud serve`` on a fresh database with the ledger tests' master data: (URL, admin token).

    An admin's requests reach validation and the handlers instead of stopping at a 403.
    """
    url = databases.create("timescaledb")
    token = asyncio.run(_seed_with_admin(url))
    with serve(url, "--no-processor", "--no-scheduler") as process:
        yield process.base_url, token


def fuzz_operations(
    base_url: str, token: str, path_regex: str, max_examples: int = 30
) -> dict[str, list[int]]:
    """Status codes answered per operation (``"GET /v1/x"``); fails on the first 5xx."""
    schema = schemathesis.openapi.from_url(base_url + "/openapi.json").include(
        path_regex=path_regex
    )
    calls: dict[str, list[int]] = {}
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]  # an invalid schema fails the test
        name = f"{operation.method.upper()} {operation.path}"
        calls[name] = _fuzz(operation.as_strategy(), token, max_examples)
    return calls


def _fuzz(strategy: Any, token: str, max_examples: int) -> list[int]:
    codes: list[int] = []

    @given(case=strategy)
    @settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: Any) -> None:
        response = case.call_and_validate(
            headers={"Authorization": f"Bearer {token}"}, checks=[not_a_server_error]
        )
        codes.append(response.status_code)
        assert response.status_code < 500, (case.path, case.body, response.text)

    check()
    return codes
