"""Hostile requests against the real application: limits apply before authentication and
parsing, NaN answers 422, and reads that would grow without bound answer 422 at once."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from cloud.auth.model import Role
from tests.support.ledger_api import Api, api
from tests.support.ledger_seed import FRIDGE, GTIN_A

pytestmark = pytest.mark.integration
JSON = {"Content-Type": "application/json"}


@pytest.fixture
async def client(timescale_url: str) -> AsyncIterator[Api]:
    async with api(timescale_url) as a:
        yield a


async def test_a_huge_declared_body_is_refused_before_the_token_is_looked_at(client: Api) -> None:
    huge = {**JSON, "Content-Length": str(300 * 2**20)}
    routes = [("POST", "/v1/asns"), ("PUT", "/v1/profiles/p1"), ("POST", "/ui/login"),
              ("POST", "/v1/batches"), ("POST", "/v1/asns/import?format=csv")]  # fmt: skip
    for method, path in routes:
        answer = await client.client.request(method, path, content=b"{}", headers=huge)
        assert answer.status_code == 413, (path, answer.text)


async def test_document_routes_check_the_role_before_reading_the_body(client: Api) -> None:
    junk = b'{"reference": ' + b"[" * 5000
    for path in ("/v1/asns", "/v1/counts"):
        anonymous = await client.client.post(path, content=junk, headers=JSON)
        assert anonymous.status_code == 401, anonymous.text
        viewer = await client.client.post(
            path, content=junk, headers={**JSON, **_as(client, Role.VIEWER)}
        )
        assert viewer.status_code == 403
        operator = await client.client.post(
            path, content=junk, headers={**JSON, **_as(client, Role.OPERATOR)}
        )
        assert operator.status_code == 422
        assert "[[[[" not in operator.text  # the input is not echoed


async def test_an_ordinary_route_refuses_a_large_body_streamed_without_length(client: Api) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(64):
            yield b" " * 8192

    answer = await client.client.put("/v1/profiles/p1", content=chunks(), headers=JSON)
    assert answer.status_code == 413


@pytest.mark.parametrize(
    ("role", "method", "path", "body"),
    [
        (Role.ADMIN, "PUT", "/v1/profiles/custom-1",
         '{"profile_id": "custom-1", "name": "x", "action_low": NaN, "action_high": 8}'),
        (Role.OPERATOR, "POST", "/v1/ledger/movements",
         '{"movement": "receive", "lot_id": Infinity, "reason": "r"}'),
        (Role.OPERATOR, "POST", "/v1/alerts/1/acknowledge", '{"note": -Infinity}'),
        (Role.ADMIN, "PUT", "/v1/sites/s-9", '{"name": "x", "timezone": 1e999}'),
        (Role.OPERATOR, "POST", "/v1/asns", '{"site_id": "site-1", "reference": NaN}'),
        (Role.OPERATOR, "POST", "/v1/counts", '{"location_id": "fridge-1", "counted": '
         '[{"lot_id": 1, "quantity": NaN}]}'),
    ],
)  # fmt: skip
async def test_nan_or_infinity_in_a_body_answers_422(
    client: Api, role: Role, method: str, path: str, body: str
) -> None:
    answer = await client.client.request(
        method, path, content=body.encode(), headers={**JSON, **_as(client, role)}
    )
    assert answer.status_code == 422, answer.text


async def test_reads_that_would_grow_without_bound_answer_422_quickly(client: Api) -> None:
    viewer = _as(client, Role.VIEWER)
    lot = await client.client.post(
        "/v1/lots", json={"gtin": GTIN_A, "lot_number": "OLD-1", "expiry": None},
        headers=_as(client, Role.ADMIN),
    )  # fmt: skip
    assert lot.status_code == 201, lot.text
    lot_id = lot.json()["lot_id"]
    received = await client.client.post(
        "/v1/ledger/movements",
        json={"movement": "receive", "lot_id": lot_id, "quantity": 5, "to_location": FRIDGE,
              "to_status": "available", "reason": "stock from 1971",
              "effective_at": "1971-01-01T00:00:00Z"},
        headers=_as(client, Role.OPERATOR),
    )  # fmt: skip
    assert received.status_code == 201, received.text
    started = time.monotonic()
    cases = [
        (f"/v1/lots/{lot_id}/exposure", {"bucket": "PT1M", "at": "9999-12-30T00:00:00Z"}, "ahead"),
        (f"/v1/lots/{lot_id}/exposure", {"bucket": "PT1M"}, "PT"),  # 55 years of minutes
        (f"/v1/lots/{lot_id}/exposure", {"bucket": "P99999999D"}, "at most"),
        (f"/v1/lots/{2**70}/exposure", {}, "less than or equal"),
        ("/v1/epcis/events", {"from": "1970-01-01T00:00:00Z", "to": "9999-12-30T00:00:00Z",
                              "sensors": "true", "sensor_interval": "P99999999D"}, "at most"),
        ("/v1/epcis/events", {"from": "2020-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z",
                              "sensors": "true", "sensor_interval": "PT1M"}, "buckets"),
        ("/v1/sensors/s-1/readings", {"start": "1970-01-01T00:00:00Z",
                                      "end": "9999-12-30T00:00:00Z", "bucket": "PT1S"}, "buckets"),
    ]  # fmt: skip
    for path, params, words in cases:
        answer = await client.client.get(path, params=params, headers=viewer)
        assert answer.status_code == 422, (path, params, answer.text)
        assert words in answer.text
    assert time.monotonic() - started < 5
    too_long = await client.client.get(f"/v1/lots/{lot_id}/exposure", headers=viewer)
    assert too_long.status_code == 422  # hourly buckets over 55 years do not fit
    suggested = too_long.json()["detail"].rsplit(" ", 1)[1]
    fine = await client.client.get(
        f"/v1/lots/{lot_id}/exposure", params={"bucket": suggested}, headers=viewer
    )
    assert fine.status_code == 200, fine.text
    assert 0 < len(fine.json()["trace"]) <= 50_000
    widest = await client.client.get(
        "/v1/epcis/events",
        params={"from": "1970-01-01T00:00:00Z", "to": "9999-12-30T00:00:00Z", "sensors": "true",
                "sensor_interval": "P366D"},
        headers=viewer,
    )  # fmt: skip
    assert widest.status_code == 200


def _as(client: Api, role: Role) -> dict[str, str]:
    return client.as_(role)


async def test_budget_and_timeouts_come_from_the_settings() -> None:
    """The defaults hold one ingest batch and its inflation, and refuse settings that do not."""
    from pydantic import ValidationError

    from cloud.config import CloudSettings

    url = "postgresql://u@localhost/db"
    assert CloudSettings(database_url=url).limits.inflight_bytes >= 72 * 2**20
    with pytest.raises(ValidationError, match="must hold one batch"):
        CloudSettings(database_url=url, limits={"inflight_bytes": 30 * 2**20})
