"""Every parameter of every route in the OpenAPI document, one hostile value at a time.

For each operation the other parameters get ordinary values (from their schema) and one gets
a hostile one chosen by its schema: integers beyond bigint, times at the ends of the calendar,
durations of 273,000 years or zero, text with a NUL or 10,000 characters, NaN; JSON bodies get
NaN, Infinity and a deep nest. Asked by an admin (so the value reaches the handler), every
answer must be below 500 and come back in a few seconds: the class of "the query decides how
much work is done" is closed for every route, not only the ones listed in docs/security.md.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import pytest

from cloud.auth.model import Role
from tests.cloud.test_authorization_matrix import PLACEHOLDERS, _app
from tests.support.ledger_api import Api, api

pytestmark = pytest.mark.integration

HOSTILE: dict[str, list[str]] = {
    "integer": ["99999999999999999999999", "-1", "0"],
    "number": ["NaN", "1e999", "-Infinity"],
    "date-time": ["9999-12-30T00:00:00Z", "1970-01-01T00:00:00Z", "0001-01-01T00:00:00Z",
                  "2026-01-01T00:00:00+14:00"],
    "duration": ["P99999999D", "PT0S", "-PT1H", "PT0.000001S", "P1Y"],
    "string": ["\x00", "x" * 10_000, "../../etc/passwd", "é%2F?#"],
    "boolean": ["maybe"],
}  # fmt: skip
BODIES = [b'{"a": NaN}', b"[Infinity]", b"[" * 10_000 + b"]" * 10_000, b'"\\u0000"', b"{}"]
SECONDS = 5.0


def _kind(schema: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    for option in schema.get("anyOf", [schema]):
        if option.get("type") not in (None, "null"):
            return option.get("format") or option["type"], option
    return "string", schema


def _ordinary(name: str, schema: dict[str, Any]) -> str:
    kind, option = _kind(schema)
    if "enum" in option:
        return str(option["enum"][0])
    if name in PLACEHOLDERS:
        return PLACEHOLDERS[name]
    return {
        "integer": "1" if option.get("minimum", 0) >= 1 else "0",
        "number": "1.5",
        "date-time": "2026-01-02T00:00:00Z" if name in ("end", "to") else "2026-01-01T00:00:00Z",
        "duration": "PT1H",
        "boolean": "true",
    }.get(kind, "s-1")


@pytest.fixture
async def admin(timescale_url: str) -> AsyncIterator[Api]:
    async with api(timescale_url) as a:
        yield a


async def test_no_parameter_value_or_body_makes_a_route_fail_or_stall(admin: Api) -> None:
    client, headers = admin.client, admin.as_(Role.ADMIN)
    document = _app(client).openapi()
    failures: list[str] = []
    asked: list[int] = []

    async def call(method: str, path: str, params: dict[str, str], body: bytes | None) -> None:
        url = path
        for name, value in list(params.items()):
            if "{" + name + "}" in url:
                url = url.replace("{" + name + "}", quote(value, safe=""))
                del params[name]
        started = time.monotonic()
        answer = await client.request(
            method, url, params=params, content=body,
            headers={**headers, "Content-Type": "application/json"} if body else headers,
        )  # fmt: skip
        took = time.monotonic() - started
        asked.append(answer.status_code)
        if answer.status_code >= 500 or took > SECONDS:
            failures.append(
                f"{method} {url} {params} body={body!r:.40}: "
                f"{answer.status_code} in {took:.1f}s {answer.text[:100]!r}"
            )

    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if path == "/v1/batches" or path.endswith("/test"):
                continue  # ingest has its own hostile tests; a channel test sends messages
            parameters = [p for p in operation.get("parameters", []) if p["in"] != "header"]
            ordinary = {p["name"]: _ordinary(p["name"], p["schema"]) for p in parameters}
            cases: list[tuple[dict[str, str], bytes | None]] = []
            for p in parameters:
                values = HOSTILE.get(_kind(p["schema"])[0], HOSTILE["string"])
                cases.extend(({**ordinary, p["name"]: value}, None) for value in values)
            if "requestBody" in operation:
                cases += [(dict(ordinary), body) for body in BODIES]
            async with asyncio.TaskGroup() as group:
                for params, body in cases:
                    group.create_task(call(method.upper(), path, dict(params), body))
    assert failures == [], "\n".join(failures)
    assert len(asked) > 500  # every route was asked, most several times
    assert sum(400 <= code < 500 for code in asked) > len(asked) / 2
