"""Malformed and hostile batches: a clear 4xx, nothing stored, the service keeps serving."""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator
from uuid import uuid4

import httpx
import pytest

from tests.support.cloud_ingest import (
    Gateway,
    app_client,
    batch_of,
    count,
    create_gateway,
    gz,
    post,
)

pytestmark = pytest.mark.integration


def _body(**changes: object) -> dict[str, object]:
    raw: dict[str, object] = json.loads(batch_of("gw-1", uuid4(), 1, 2).model_dump_json())
    raw.update(changes)
    return raw


async def _send(
    client: httpx.AsyncClient, gw: Gateway, payload: bytes, **headers: str
) -> httpx.Response:
    return await client.post("/v1/batches", content=payload, headers={**gw.headers, **headers})


@pytest.fixture
async def gw(timescale_url: str) -> Gateway:
    return await create_gateway(timescale_url)


async def test_tokens_are_checked_before_anything(timescale_url: str, gw: Gateway) -> None:
    other = await create_gateway(timescale_url, "gw-2")
    batch = batch_of("gw-1", uuid4(), 1, 2)
    async with app_client(timescale_url) as client:
        missing = await client.post("/v1/batches", content=gz(batch))
        wrong = await post(client, Gateway("gw-1", "not-the-token"), batch)
        basic = await client.post(
            "/v1/batches", content=gz(batch), headers={"Authorization": "Basic Z3c6eA=="}
        )
        foreign = await post(client, other, batch)
    assert [r.status_code for r in (missing, wrong, basic, foreign)] == [401, 401, 401, 403]
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    assert "gw-2" in foreign.json()["error"]
    assert await count(timescale_url, "readings") == 0


async def test_a_disabled_gateway_is_refused(timescale_url: str, gw: Gateway) -> None:
    async with await __import__("psycopg").AsyncConnection.connect(
        timescale_url, autocommit=True
    ) as conn:
        await conn.execute("UPDATE gateways SET disabled_at = now()")
    async with app_client(timescale_url) as client:
        response = await post(client, gw, batch_of("gw-1", uuid4(), 1, 2))
    assert response.status_code == 401
    assert "disabled" in response.json()["error"]


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        (b"{not json", "json_invalid"),
        (b"\xff\xfe\x00garbage", "json_invalid"),
        (json.dumps(_body(records=[])).encode(), "too_short"),
        (json.dumps(_body(schema_version=2)).encode(), "literal_error"),
        (json.dumps(_body(boot_id="'; DROP TABLE readings; --")).encode(), "uuid_parsing"),
        (json.dumps(_body(records="all of them")).encode(), "list_type"),
        (json.dumps(_body(extra_field=1)).encode(), "extra_forbidden"),
    ],
    ids=["broken", "not-utf8", "empty", "version", "sql-in-uuid", "wrong-type", "extra"],
)
async def test_invalid_batches_get_422_with_the_reason(
    timescale_url: str, gw: Gateway, payload: bytes, fragment: str
) -> None:
    async with app_client(timescale_url) as client:
        response = await _send(client, gw, gzip.compress(payload), **{"Content-Encoding": "gzip"})
        healthy = await post(client, gw, batch_of("gw-1", uuid4(), 1, 2))
    assert response.status_code == 422, response.text
    assert fragment in json.dumps(response.json()["detail"])
    assert healthy.status_code == 200
    assert await count(timescale_url, "readings") == 2


async def test_record_level_errors_name_the_position(timescale_url: str, gw: Gateway) -> None:
    body = _body()
    records = body["records"]
    assert isinstance(records, list)
    records[1]["record"]["value"] = "warm"
    records[0]["record"]["time"] = "2026-01-01T00:00:00"  # naive
    async with app_client(timescale_url) as client:
        response = await _send(client, gw, json.dumps(body).encode())
    locations = [e["loc"][:2] for e in response.json()["detail"]]
    assert response.status_code == 422
    assert ["records", 0] in locations
    assert ["records", 1] in locations


async def test_nul_characters_and_lone_surrogates_are_refused(
    timescale_url: str, gw: Gateway
) -> None:
    status = {"kind": "device_status", "device_id": "r1", "device_type": "llrp_reader",
              "state": "online", "time": "2026-01-01T00:00:00Z"}  # fmt: skip
    nul = _body(records=[{"seq": 1, "record": {**status, "detail": "a\u0000b"}}])
    lone = json.dumps(_body(records=[{"seq": 1, "record": {**status, "detail": "x"}}]))
    lone = lone.replace('"detail": "x"', '"detail": "\\ud800"')
    async with app_client(timescale_url) as client:
        r1 = await _send(client, gw, json.dumps(nul).encode())
        r2 = await _send(client, gw, lone.encode())
    assert r1.status_code == 422
    assert "NUL" in json.dumps(r1.json())
    assert r2.status_code == 422
    assert await count(timescale_url, "device_status") == 0


async def test_sql_in_strings_is_stored_verbatim(timescale_url: str, gw: Gateway) -> None:
    hostile = "x'); DROP TABLE readings; --"
    status = {"kind": "device_status", "device_id": "r1", "device_type": "llrp_reader",
              "state": "online", "time": "2026-01-01T00:00:00Z", "detail": hostile}  # fmt: skip
    body = _body(records=[{"seq": 1, "record": status}])
    async with app_client(timescale_url) as client:
        response = await _send(client, gw, json.dumps(body).encode())
    assert response.status_code == 200
    assert (
        await count(timescale_url, "device_status", "detail = 'x''); DROP TABLE readings; --'") == 1
    )


async def test_size_limits_hold_for_compressed_and_inflated_bodies(
    timescale_url: str, gw: Gateway
) -> None:
    bomb = gzip.compress(b" " * (3 * 1024 * 1024))  # 3 MiB of spaces: ~3 kB compressed
    limits = {"max_batch_bytes": 64 * 1024, "max_batch_decompressed_bytes": 1024 * 1024}
    async with app_client(timescale_url, **limits) as client:
        inflated = await _send(client, gw, bomb, **{"Content-Encoding": "gzip"})
        declared = await _send(client, gw, b"x" * (65 * 1024))

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(100):
                yield b" " * 1024

        streamed = await client.post(
            "/v1/batches",
            content=chunks(),
            headers=gw.headers,
        )
        brotli = await _send(client, gw, b"{}", **{"Content-Encoding": "br"})
        broken = await _send(client, gw, b"\x1f\x8b not gzip", **{"Content-Encoding": "gzip"})
        truncated = await _send(
            client, gw, gz(batch_of("gw-1", uuid4(), 1, 5))[:-10], **{"Content-Encoding": "gzip"}
        )
    assert len(bomb) < 64 * 1024
    assert inflated.status_code == 413
    assert declared.status_code == 413
    assert streamed.status_code == 413
    assert brotli.status_code == 415
    assert broken.status_code == 400
    assert truncated.status_code == 400
    assert await count(timescale_url, "readings") == 0


async def test_too_many_records_are_refused(timescale_url: str, gw: Gateway) -> None:
    big = batch_of("gw-1", uuid4(), 1, 10_000).model_dump()
    big["records"].append({**big["records"][-1], "seq": 10_001})
    payload = gzip.compress(json.dumps(big, default=str).encode())
    async with app_client(timescale_url) as client:
        response = await _send(client, gw, payload, **{"Content-Encoding": "gzip"})
    assert response.status_code == 422
    assert "too_long" in json.dumps(response.json()["detail"])


@pytest.mark.parametrize(
    ("field", "value"),
    [("epc", 1.5), ("raw", [])],
    ids=["epc-number", "raw-list"],
)
async def test_wrong_json_types_in_custom_validators_are_422(
    timescale_url: str, gw: Gateway, field: str, value: object
) -> None:
    at = "2026-01-01T00:00:00Z"
    record: dict[str, object] = (
        {"kind": "tag_read", "reader_id": "r1", "antenna": 1, "epc": value, "first_seen": at,
         "last_seen": at, "received_at": at}
        if field == "epc"
        else {"kind": "dead_letter", "source": "s", "reason": "r", "raw": value, "received_at": at}
    )  # fmt: skip
    body = _body(records=[{"seq": 1, "record": record}])
    async with app_client(timescale_url) as client:
        response = await _send(client, gw, json.dumps(body).encode())
    assert response.status_code == 422
