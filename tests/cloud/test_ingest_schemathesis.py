"""Schemathesis against the OpenAPI document of a real ``coldtrace cloud serve``: no 5xx, ever.

Covers the ingest and read endpoints (this area's); cases run with and without valid tokens so
the generated bodies and queries reach validation rather than stopping at authentication.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from cloud.auth.model import hash_token, new_token
from cloud.ingest.auth import new_token as new_gateway_token
from cloud.ingest.auth import token_digest
from tests.support.cloud_processes import serve

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OURS = r"^/(healthz|v1/batches|v1/sensors/|v1/locations/|v1/devices)"


@dataclass(frozen=True)
class Tokens:
    gateway: str
    viewer: str


@pytest.fixture(scope="module")
def cloud_tokens(databases: object) -> Iterator[tuple[str, Tokens]]:
    from tests.support.databases import DatabaseFactory

    assert isinstance(databases, DatabaseFactory)
    url = databases.create("timescaledb")
    tokens = Tokens(gateway=new_gateway_token(), viewer=new_token())
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO gateways (gateway_id, token_hash) VALUES ('gw-1', %s)",
            (token_digest(tokens.gateway),),
        )
        cur = conn.execute(
            "INSERT INTO users (name, role) VALUES ('v', 'viewer') RETURNING user_id"
        )
        row = cur.fetchone()
        assert row is not None
        conn.execute(
            "INSERT INTO api_tokens (user_id, token_hash) VALUES (%s, %s)",
            (row[0], hash_token(tokens.viewer)),
        )
    with serve(url, "--no-processor", "--no-scheduler") as cloud:
        yield cloud.base_url, tokens


@pytest.fixture(scope="module")
def api_schema(cloud_tokens: tuple[str, Tokens]) -> schemathesis.schemas.BaseSchema:
    base, _ = cloud_tokens
    return schemathesis.openapi.from_url(base + "/openapi.json").include(path_regex=OURS)


def _checker(token: str, strategy: Any, calls: list[int]) -> Any:
    @given(case=strategy)
    @settings(
        max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    def check(case: Any) -> None:
        if isinstance(case.body, dict) and "gateway_id" in case.body:
            case.body["gateway_id"] = "gw-1"  # reach the writer, not just the 403
        response = case.call_and_validate(
            headers={"Authorization": f"Bearer {token}"}, checks=[not_a_server_error]
        )
        calls.append(response.status_code)
        assert response.status_code < 500

    return check


def test_no_input_makes_the_service_fail(
    api_schema: schemathesis.schemas.BaseSchema, cloud_tokens: tuple[str, Tokens]
) -> None:
    # schemathesis.pytest.from_fixture does not work with pytest 9, so each operation's strategy
    # is driven by hypothesis here directly.
    _, tokens = cloud_tokens
    calls: dict[str, list[int]] = {}
    for result in api_schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]  # an invalid schema fails the test
        token = tokens.gateway if operation.path == "/v1/batches" else tokens.viewer
        name = f"{operation.method.upper()} {operation.path}"
        calls[name] = []
        _checker(token, operation.as_strategy(), calls[name])()
    assert set(calls) >= {
        "POST /v1/batches",
        "GET /v1/devices",
        "GET /v1/sensors/{sensor_id}/readings",
    }
    assert all(len(s) >= 10 for name, s in calls.items() if name != "GET /healthz"), calls
    assert 200 in calls["GET /v1/devices"]
